"""A real image folder with label errors whose truth is kept, and the score of a diagnosis against it.

``build``: from the CIFAR-100 archive, the classes of whole superclasses (by default four: aquatic
mammals, fish, large carnivores, vehicles 1; 20 classes), ``--per-class`` images each, written as
``<root>/<class>/<n>.png`` with made-up names; a share ``--noise`` of the images is filed under
another class, half of them under a look-alike (a class of the same superclass), half under a
class of another superclass. The truth (file, true class, filed class) goes to ``--truth``, outside the folder.

``score``: for each signal the project's outputs hold (the diagnose run's label issues, the train
run's training dynamics, the two together, Datalab's audit), precision and recall of its flagged
images against the truth and precision among its top N suspects (N = the true number of errors), as
JSON; the training dynamics only see the training images, so they are scored against those.

    python benchmarks/noisy_folder.py build --archive ../shared/data --root /tmp/noisy/images \\
        --truth /tmp/noisy/truth.csv
    kedro run --params=data.source=image_folder,data.root=/tmp/noisy/images   # then --pipelines=diagnose
    python benchmarks/noisy_folder.py score --truth /tmp/noisy/truth.csv --project .
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SUPERCLASSES = ["aquatic_mammals", "fish", "large_carnivores", "vehicles_1"]


def _load(archive: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from classwise.data.sources.cifar100 import _unpickle, rows_to_images  # the project's safe reader

    path = archive / "cifar-100-python.tar.gz" if archive.is_dir() else archive
    with tarfile.open(path) as tar:
        blobs = {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    meta = _unpickle(blobs["meta"], "meta")
    parts = [_unpickle(blobs[name], name) for name in ("train", "test")]
    images = rows_to_images(np.concatenate([p["data"] for p in parts]))
    fine = np.concatenate([np.asarray(p["fine_labels"]) for p in parts])
    coarse = np.concatenate([np.asarray(p["coarse_labels"]) for p in parts])
    decode = lambda names: [n.decode() if isinstance(n, bytes) else str(n) for n in names]  # noqa: E731
    return images, fine, coarse, decode(meta["fine_label_names"]), decode(meta["coarse_label_names"])


def _pick(args: argparse.Namespace, fine: np.ndarray, coarse: np.ndarray, coarse_names: list[str]):
    """(rng after the draw, the classes, the archive rows picked): the same for the same seed and options."""
    rng = np.random.default_rng(args.seed)
    chosen_coarse = [coarse_names.index(s) for s in args.superclasses]
    classes = sorted({int(f) for f, c in zip(fine, coarse) if c in chosen_coarse})
    picked = np.concatenate([rng.choice(np.flatnonzero(fine == f), args.per_class, replace=False) for f in classes])
    return rng, classes, picked


def build(args: argparse.Namespace) -> dict:
    images, fine, coarse, fine_names, coarse_names = _load(Path(args.archive))
    rng, classes, picked = _pick(args, fine, coarse, coarse_names)
    superclass_of = {f: int(coarse[np.flatnonzero(fine == f)[0]]) for f in classes}
    true = fine[picked].copy()
    filed = true.copy()
    n_noisy = int(round(args.noise * len(picked)))
    noisy = rng.choice(len(picked), n_noisy, replace=False)
    for k, i in enumerate(noisy):
        same = [f for f in classes if superclass_of[f] == superclass_of[true[i]] and f != true[i]]
        other = [f for f in classes if superclass_of[f] != superclass_of[true[i]]]
        filed[i] = rng.choice(same if k % 2 == 0 else other)  # half under a look-alike
    root = Path(args.root)
    rows = []
    order = rng.permutation(len(picked))  # names say nothing about the class or the flip
    for n, i in enumerate(order):
        folder = root / fine_names[filed[i]]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{n:05d}.png"
        Image.fromarray(images[picked[i]]).save(folder / name)
        rows.append({"file": f"{fine_names[filed[i]]}/{name}", "true_class": fine_names[true[i]],
                     "filed_class": fine_names[filed[i]], "flipped": bool(filed[i] != true[i]),
                     "look_alike": bool(filed[i] != true[i] and superclass_of[filed[i]] == superclass_of[true[i]])})
    truth = pd.DataFrame(rows)
    Path(args.truth).parent.mkdir(parents=True, exist_ok=True)
    truth.to_csv(args.truth, index=False)
    summary = {"images": len(truth), "classes": len(classes), "flipped": int(truth["flipped"].sum()),
               "flipped_to_look_alike": int(truth["look_alike"].sum()), "root": str(root), "truth": args.truth}
    print(json.dumps(summary, indent=1))
    return summary


def heldout(args: argparse.Namespace) -> dict:
    """Top-1 of a trained model on the archive's images of the folder's classes that the folder does not
    hold (true labels; 300 a class with the defaults): a clean test set far larger than the split's."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from classwise.core.device import predict_proba
    from classwise.models.loading import load_network

    images, fine, coarse, fine_names, coarse_names = _load(Path(args.archive))
    _, classes, picked = _pick(args, fine, coarse, coarse_names)
    rows = np.setdiff1d(np.flatnonzero(np.isin(fine, classes)), picked)
    model = torch.load(args.model, map_location="cpu", weights_only=True)
    names = model["config"]["class_names"]
    index_of = {name: i for i, name in enumerate(names)}
    truth = np.asarray([index_of[fine_names[f]] for f in fine[rows]])
    norm = model["config"]["normalization"]
    probs = predict_proba(load_network(model), images[rows], norm["mean"], norm["std"])
    result = {"model": args.model, "heldout_images": int(len(rows)),
              "top1": float((probs.argmax(1) == truth).mean())}
    print(json.dumps(result, indent=1))
    return result


def _relative(source: str) -> str:
    parts = Path(str(source)).parts
    return "/".join(parts[-2:])  # <class>/<name>


def _scored(ranked: list[str], flagged: set[str], flipped: set[str], images: int) -> dict:
    """Precision and recall of a flagged set, and precision among the first N of a ranking (N = true errors)."""
    hits = len(flagged & flipped)
    return {
        "images": images, "true_errors": len(flipped), "flagged": len(flagged), "flagged_share": len(flagged) / images,
        "precision": hits / max(len(flagged), 1), "recall": hits / max(len(flipped), 1),
        "top_n_precision": len(set(ranked[:len(flipped)]) & flipped) / max(min(len(flipped), len(ranked)), 1),
        "top_24_precision": len(set(ranked[:24]) & flipped) / max(min(24, len(ranked)), 1),
        "random_precision": len(flipped) / images,
    }


def score(args: argparse.Namespace) -> dict:
    """Every signal the project's outputs hold: the diagnose run's label issues (K-fold), the train run's
    training dynamics (its training images only), their agreement, and Datalab's audit."""
    truth = pd.read_csv(args.truth)
    project = Path(args.project)
    flipped = set(truth.loc[truth["flipped"], "file"])
    result: dict = {"images": len(truth), "true_errors": len(flipped)}
    issues_file = project / "data/08_reporting/label_issues.csv"
    if issues_file.is_file():
        issues = pd.read_csv(issues_file, dtype={"source_file": str})
        ranked = [_relative(s) for s in issues.sort_values("rank")["source_file"]]
        oof = pd.read_parquet(project / "data/07_model_output/oof_predictions.parquet")
        diagnosis = pd.read_csv(project / "data/08_reporting/class_diagnosis.csv")
        result["kfold"] = {
            **_scored(ranked, set(ranked), flipped, len(truth)),
            "oof_top1": float((oof["label"] == oof["predicted"]).mean()),
            "reliability": str(diagnosis["reliability"].iloc[0]) if "reliability" in diagnosis else None,
        }
    dynamics_file = project / "data/07_model_output/training_dynamics.parquet"
    if dynamics_file.is_file():
        dynamics = pd.read_parquet(dynamics_file)
        ids = [_relative(i) for i in dynamics["id"]]
        dyn_flagged = {i for i, f in zip(ids, dynamics["flagged"]) if f}
        in_training = flipped & set(ids)
        result["dynamics"] = _scored(ids, dyn_flagged, in_training, len(ids))
        if "kfold" in result:
            kfold_flagged = set(ranked) & set(ids)
            both = dyn_flagged & kfold_flagged
            result["kfold_on_training_images"] = _scored([r for r in ranked if r in set(ids)], kfold_flagged,
                                                         in_training, len(ids))
            result["both"] = _scored([i for i in ids if i in both], both, in_training, len(ids))  # AUM order
    audit_file = project / "data/08_reporting/data_issues.csv"
    if audit_file.is_file():
        audit = pd.read_csv(audit_file, dtype={"source_file": str, "id": str})
        for kind, rows in audit.groupby("issue"):
            ranked = [_relative(i) for i in rows.sort_values("score")["id"]]
            result[f"datalab_{kind}"] = _scored(ranked, set(ranked), flipped, len(truth))
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the noisy folder and its truth")
    b.add_argument("--archive", default="data/01_raw", help="folder holding cifar-100-python.tar.gz, or the file")
    b.add_argument("--root", required=True, help="where the class folders go")
    b.add_argument("--truth", required=True, help="the CSV of the truth, outside --root")
    b.add_argument("--superclasses", nargs="+", default=SUPERCLASSES)
    b.add_argument("--per-class", type=int, default=300)
    b.add_argument("--noise", type=float, default=0.08, help="share of images filed under another class")
    b.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="score a diagnose run against the truth")
    s.add_argument("--truth", required=True)
    s.add_argument("--project", default=".", help="the project whose data/ holds the diagnose run's outputs")
    s.add_argument("--out", default=None)
    h = sub.add_parser("heldout", help="a trained model's top-1 on the archive images the folder does not hold")
    h.add_argument("--archive", default="data/01_raw")
    h.add_argument("--model", default="data/06_models/model.pt")
    h.add_argument("--superclasses", nargs="+", default=SUPERCLASSES)
    h.add_argument("--per-class", type=int, default=300)
    h.add_argument("--seed", type=int, default=0, help="the seed the folder was built with")
    args = p.parse_args(argv)
    if args.command == "build" and Path(args.truth).resolve().is_relative_to(Path(args.root).resolve()):
        p.error("--truth must be outside --root, or the truth would be ingested with the images")
    return {"build": build, "score": score, "heldout": heldout}[args.command](args)


if __name__ == "__main__":
    main()
