"""Benchmark: the imbalance remedies on the seed-like CIFAR-100 cut, per head / medium / tail group.

Every row trains the same network for the same epochs on the same split (data,
split and normalisation from conf/base, with data.source=cifar100,
data.cifar100.seed_like=true), differing only in the keys its row names; the
row's val and test probabilities are saved under ``--out``. ``--table`` then
writes the Markdown table of docs/results.md from the saved rows, adding a
post-hoc logit-adjusted row computed from the cross-entropy row's probabilities.

    PYTHONPATH=src .venv/bin/python benchmarks/imbalance_cifar100.py --root data/01_raw --out /tmp/imbalance
    PYTHONPATH=src .venv/bin/python benchmarks/imbalance_cifar100.py --out /tmp/imbalance --table \
        --figure docs/imbalance_recall_vs_size.png
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import classwise  # noqa: F401  before torch, for the package's OpenMP setting (throughput.py says why)
import numpy as np
import torch
import yaml

from classwise.core.config import parse
from classwise.evaluation.correlation import f1_size_correlation
from classwise.evaluation.figures import recall_vs_size_figure
from classwise.evaluation.groups import adjust_probabilities, class_groups, group_metrics
from classwise.evaluation.metrics import per_class_table, summary_metrics
from classwise.models import build_model
from classwise.data.sources import DataConfig, load_source
from classwise.data.split import SplitConfig, split_table, subset_index
from classwise.data.stats import NormalizationConfig, normalization_stats
from classwise.training import TrainConfig, fit, predict_proba

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"

# What every row shares (on top of conf/base/parameters_train.yml) and what each row changes.
COMMON: dict[str, Any] = {
    "model": "preact_resnet18", "model_options": {"width": 8}, "epochs": 8, "milestones": [6],
    "batch_size": 128, "lr": 0.1, "weight_decay": 5.0e-4, "augment": "crop_flip", "seed": 0,
    "checkpoint_dir": None, "progress": False, "device": "cpu",
}
ROWS: dict[str, dict[str, Any]] = {
    "cross_entropy": {},
    "balanced_softmax": {"loss": "balanced_softmax"},
    "ldam_drw": {"loss": "ldam", "drw_epoch": 6},
    "oversampling": {"oversample": True},
    "focal_class_balanced": {"loss": "focal", "loss_options": {"gamma": 1.0, "class_balanced": True}},
}


def _base(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONF / f"parameters_{name}.yml").read_text())


def load_data(root: str):
    data_params = {**_base("data")["data"], "source": "cifar100", "root": root}
    data_params["cifar100"] = {**data_params["cifar100"], "seed_like": True}
    dataset = load_source(parse(DataConfig, data_params, "data")).data
    split = split_table(dataset, parse(SplitConfig, _base("data")["split"], "split"))
    index = {s: subset_index(dataset, split, s) for s in ("train", "val", "test")}
    stats = normalization_stats(dataset.images[index["train"]],
                                parse(NormalizationConfig, _base("data")["normalization"], "normalization"))
    return dataset, index, stats


def train_row(name: str, dataset, index, stats, out: Path) -> None:
    params = {**_base("train")["train"], **COMMON, **ROWS[name]}
    cfg = parse(TrainConfig, params, "train")
    x, y = dataset.images, dataset.labels
    start = time.perf_counter()
    result = fit(x[index["train"]], y[index["train"]], x[index["val"]], y[index["val"]], dataset.num_classes,
                 stats["mean"], stats["std"], cfg)
    wall = time.perf_counter() - start
    net = build_model(cfg.model, dataset.num_classes, **cfg.model_options)
    net.load_state_dict(result.best_state)
    probs = {s: predict_proba(net, x[index[s]], stats["mean"], stats["std"], device="cpu") for s in ("val", "test")}
    np.savez_compressed(
        out / f"{name}.npz", val_probs=probs["val"], test_probs=probs["test"], val_labels=y[index["val"]],
        test_labels=y[index["test"]], train_counts=np.bincount(y[index["train"]], minlength=dataset.num_classes),
    )
    meta = {"row": name, "changes": ROWS[name], "common": COMMON, "wall_seconds": wall,
            "best_epoch": result.best_epoch, "history": result.history, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    logging.info("%s: %.0f s, best epoch %d", name, wall, result.best_epoch)


def row_numbers(labels: np.ndarray, probs: np.ndarray, val_labels: np.ndarray, val_probs: np.ndarray,
                train_counts: np.ndarray) -> dict[str, float]:
    """Test top-1 overall and per group, test macro-F1; on val (the project's correlation subset)
    the classes under F1 0.5 and Pearson r of F1 with train count."""
    groups = class_groups(train_counts)
    predicted = probs.argmax(1)
    numbers = {"top1": float(np.mean(predicted == labels)), **group_metrics(labels, predicted, groups),
               "macro_f1": summary_metrics(labels, probs)["macro_f1"]}
    names = [str(c) for c in range(len(train_counts))]
    report = per_class_table(val_labels, val_probs.argmax(1), names, train_counts, "val")
    corr = f1_size_correlation(report, "val", 0.5, bootstrap_resamples=0)
    numbers["under_f1"] = len(corr["classes_below_threshold"])
    numbers["r"] = corr["pearson_r"]
    return numbers


def results_table(out: Path, tau: float) -> str:
    """The Markdown table of the rows saved in ``out``, plus post-hoc adjustment of cross-entropy."""
    lines = [
        "| row | test top-1 | head | medium | tail | test macro-F1 | tail macro-F1 | val classes under F1 0.5 "
        "| val F1-vs-size r | wall time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = [n for n in ROWS if (out / f"{n}.npz").exists()]
    for name in names + (["post_hoc"] if "cross_entropy" in names else []):
        blob = np.load(out / f"{'cross_entropy' if name == 'post_hoc' else name}.npz")
        meta = json.loads((out / f"{'cross_entropy' if name == 'post_hoc' else name}.json").read_text())
        test_probs, val_probs = blob["test_probs"], blob["val_probs"]
        label, wall = name, f"{meta['wall_seconds']:.0f}"
        if name == "post_hoc":
            test_probs = adjust_probabilities(test_probs, blob["train_counts"], tau)
            val_probs = adjust_probabilities(val_probs, blob["train_counts"], tau)
            label, wall = f"cross_entropy + post-hoc adjustment (tau {tau:g})", "0 (no training)"
        m = row_numbers(blob["test_labels"], test_probs, blob["val_labels"], val_probs, blob["train_counts"])
        pct = [f"{100 * m[k]:.1f}" for k in ("top1", "head_top1", "medium_top1", "tail_top1")]
        r = "–" if m["r"] is None else f"{m['r']:.2f}"  # undefined when every class has the same F1
        lines.append(f"| {label} | {' | '.join(pct)} | {m['macro_f1']:.3f} | {m['tail_macro_f1']:.3f} "
                     f"| {m['under_f1']} | {r} | {wall} |")
    return "\n".join(lines)


def recall_figure(out: Path, rows: list[str], path: Path) -> None:
    """Per-class test recall against train count, for ``rows`` side by side."""
    runs, groups = {}, None
    for name in rows:
        blob = np.load(out / f"{name}.npz")
        labels, predicted = blob["test_labels"], blob["test_probs"].argmax(1)
        counts = blob["train_counts"]
        recall = np.array([np.mean(predicted[labels == c] == c) if np.any(labels == c) else np.nan
                           for c in range(len(counts))])
        runs[name], groups = (counts, recall), class_groups(counts)
    fig = recall_vs_size_figure(runs, groups)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="data/01_raw", help="folder with cifar-100-python.tar.gz")
    ap.add_argument("--out", default="data/07_model_output/imbalance_benchmark", help="where rows are saved")
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS), help="rows to train")
    ap.add_argument("--table", action="store_true", help="write the Markdown table from saved rows, no training")
    ap.add_argument("--figure", default=None, help="with --table: also save the recall-vs-size figure here")
    ap.add_argument("--figure-rows", nargs=2, default=["cross_entropy", "balanced_softmax"], help="its two rows")
    ap.add_argument("--tau", type=float, default=1.0, help="post-hoc logit adjustment tau of the extra row")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(results_table(out, args.tau))  # noqa: T201 (the script's output)
        if args.figure:
            recall_figure(out, args.figure_rows, Path(args.figure))
        return
    dataset, index, stats = load_data(args.root)
    for name in args.rows:
        if (out / f"{name}.json").exists():
            logging.info("%s: already measured in %s; delete it to measure again", name, out)
            continue
        train_row(name, dataset, index, stats, out)


if __name__ == "__main__":
    main()
