"""Time to accuracy on real images: Classwise's loop against the torchvision-reference loop.

Both train the same network, for the same epochs and lr schedule, on the same split of the
CIFAR-100 seed-like cut (91 classes, 35,384 images; 10 val and 10 test images a class held
out, as conf/base splits), and report wall time, training images/s, val and test top-1 of
the best-by-val epoch, and the time at which val top-1 first reached ``--target``.

* ours: ``classwise.training.fit`` (device-resident uint8 set, batched on-device crop + flip,
  bf16 autocast and channels-last where ``core.device.speed_path`` picks them).
* reference: a DataLoader over PIL images with RandomCrop(32, 4) + RandomHorizontalFlip,
  workers = cores, pinned and persistent workers; float32 NCHW, as a user writes it
  (``--reference-precision ours`` gives it the same bf16 autocast and channels-last choice as ours).

    PYTHONPATH=src .venv/bin/python benchmarks/time_to_accuracy.py --root data/01_raw --out /tmp/tta.json
    PYTHONPATH=src .venv/bin/python benchmarks/time_to_accuracy.py --root data/01_raw --device cuda \\
        --model resnet18 --width 64 --epochs 30 --milestones 15 25 --target 0.5 --out tta-gpu.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from typing import Any

import classwise  # noqa: F401  before torch, for the package's OpenMP setting (throughput.py says why)
import numpy as np
import torch
from torch import nn

from classwise.core.config import parse
from classwise.core.device import SpeedPath, autocast, predict_proba, resolve_device, speed_path
from classwise.models import build_model
from classwise.training import TrainConfig, fit, lr_at

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import openmp_wait, pil_loader  # noqa: E402  the usual loop's loader, as in the throughput benchmark
from imbalance_cifar100 import load_data  # noqa: E402  the same data, split and statistics as docs/results.md

log = logging.getLogger("time_to_accuracy")


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    """What both loops share: network, epochs, schedule, optimiser, augmentation."""
    return {"model": args.model, "model_options": {"width": args.width}, "epochs": args.epochs,
            "milestones": list(args.milestones) if args.schedule == "step" else [], "schedule": args.schedule,
            "warmup": args.warmup, "batch_size": args.batch_size, "lr": args.lr, "momentum": 0.9,
            "weight_decay": 5e-4, "label_smoothing": 0.0, "augment": "crop_flip", "oversample": False,
            "cutmix_p": 0.0, "compile": "auto", "seed": 0, "device": args.device, "checkpoint_dir": None, "progress": False}


def time_to(history: list[dict[str, float]], target: float) -> float | None:
    """Seconds from the start until the first epoch whose val top-1 reached ``target``."""
    return next((row["elapsed_s"] for row in history if row["val_accuracy"] >= target), None)


def run_ours(cfg: TrainConfig, data: dict[str, np.ndarray], classes: int, stats: dict) -> dict[str, Any]:
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    result = fit(data["train_x"], data["train_y"], data["val_x"], data["val_y"], classes, stats["mean"],
                 stats["std"], cfg, on_epoch_end=lambda row: history.append(
                     {**row, "elapsed_s": time.perf_counter() - start}))
    wall = time.perf_counter() - start
    net = build_model(cfg.model, classes, **cfg.model_options)
    net.load_state_dict(result.best_state)
    probs = predict_proba(net, data["test_x"], stats["mean"], stats["std"], device=cfg.device)
    return {"wall_s": wall, "history": history, "test_top1": float(np.mean(probs.argmax(1) == data["test_y"]))}


@torch.no_grad()
def _top1(model: nn.Module, loader, device: torch.device, amp: bool, memory_format) -> float:
    model.eval()
    right = seen = 0
    for x, y in loader:
        with autocast(device, amp):
            logits = model(x.to(device, non_blocking=True, memory_format=memory_format))
        right += int((logits.argmax(1).cpu() == y).sum())
        seen += len(y)
    return right / max(seen, 1)


def run_reference(cfg: TrainConfig, data: dict[str, np.ndarray], classes: int, stats: dict,
                  workers: int, precision: str = "fp32") -> dict[str, Any]:
    """The torchvision classification reference's loop: float32 NCHW, or (``precision="ours"``) with the
    speed path ours takes on this device."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, classes, **cfg.model_options).to(device)
    path = (speed_path(device, cfg.amp, cfg.channels_last, model=model) if precision == "ours"
            else SpeedPath(False, False, "float32 NCHW, as the reference scripts run by default"))
    log.info("reference loop on %s: %s", device, path.describe())
    memory_format = torch.channels_last if path.channels_last else torch.contiguous_format
    start = time.perf_counter()
    train = pil_loader(data["train_x"], data["train_y"], cfg.batch_size, workers, device, stats["mean"], stats["std"])
    val = pil_loader(data["val_x"], data["val_y"], 1024, workers, device, stats["mean"], stats["std"], train=False)
    test = pil_loader(data["test_x"], data["test_y"], 1024, workers, device, stats["mean"], stats["std"],
                      train=False)
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history, best, best_state = [], -1.0, None
    for epoch in range(cfg.epochs):
        model.train()
        epoch_start, seen = time.perf_counter(), 0
        for i, (x, y) in enumerate(train):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, epoch, i, len(train))
            x = x.to(device, non_blocking=True, memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            with autocast(device, path.amp):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
        train_s = time.perf_counter() - epoch_start
        val_acc = _top1(model, val, device, path.amp, memory_format)
        history.append({"epoch": epoch + 1, "val_accuracy": val_acc, "images_per_s": seen / train_s,
                        "elapsed_s": time.perf_counter() - start})
        log.info("reference epoch %d: val top-1 %.3f, %.0f img/s", epoch + 1, val_acc, seen / train_s)
        if val_acc > best:
            best, best_state = val_acc, {k: v.detach().clone() for k, v in model.state_dict().items()}
    wall = time.perf_counter() - start
    model.load_state_dict(best_state)
    return {"wall_s": wall, "history": history, "test_top1": _top1(model, test, device, path.amp, memory_format)}


def summary(name: str, run: dict[str, Any], target: float) -> dict[str, Any]:
    rates = [row["images_per_s"] for row in run["history"]]
    reached = time_to(run["history"], target)
    return {"loop": name, "wall_s": run["wall_s"], "images_per_s": float(np.median(rates)),
            "best_val_top1": max(row["val_accuracy"] for row in run["history"]), "test_top1": run["test_top1"],
            "time_to_target_s": reached}


def table(rows: list[dict[str, Any]], target: float) -> str:
    lines = [f"| loop | wall time (s) | train images/s (median epoch) | best val top-1 | test top-1 "
             f"| time to val top-1 {target:.0%} (s) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        reached = "not reached" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}"
        lines.append(f"| {r['loop']} | {r['wall_s']:.0f} | {r['images_per_s']:,.0f} | {100 * r['best_val_top1']:.1f} "
                     f"| {100 * r['test_top1']:.1f} | {reached} |")
    return "\n".join(lines)


def figure(report: dict[str, Any], extra: dict[str, "pd.DataFrame"] | None = None):
    """Val top-1 against wall time: one line a loop (a dot an epoch), plus ``extra`` curves, e.g. a
    `kedro run`'s training_history.csv (its epochs' seconds summed), each named by its key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    names = {"ours": "Classwise's loop", "reference": f"reference loop ({report.get('reference_precision', 'fp32')})"}
    for name, run in report["runs"].items():
        minutes = [row["elapsed_s"] / 60 for row in run["history"]]
        accuracy = [100 * row["val_accuracy"] for row in run["history"]]
        loop, _, recipe_label = name.partition(" | ")
        label = names.get(loop, loop) + (f" ({recipe_label})" if recipe_label else "")
        ax.plot(minutes, accuracy, marker="o", markersize=3, label=f"{label}: test {100 * run['test_top1']:.1f}%")
    for label, history in (extra or {}).items():
        ax.plot(history["seconds"].cumsum() / 60, 100 * history["val_accuracy"], marker=".", markersize=3,
                linestyle="--", label=label)
    r = report["recipe"]
    ax.set_xlabel("wall time (minutes, training and validation)")
    ax.set_ylabel("val top-1 (%)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{r['model']} width {r['model_options']['width']}, batch {r['batch_size']}, {r['augment']}, "
                 f"{r['epochs']} epochs\nours: {report['path']}", fontsize=9)
    return fig


def merged(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report holding the runs of ``reports``; with more than one, each run is named
    "loop | schedule, epochs" so that the figure tells the recipes apart."""
    if len(reports) == 1:
        return reports[0]
    runs = {}
    for report in reports:
        r = report["recipe"]
        recipe = f"{r.get('schedule', 'step')}, {r['epochs']} epochs"
        runs.update({f"{name} | {recipe}": run for name, run in report["runs"].items()})
    return {**reports[0], "runs": runs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/01_raw", help="folder holding cifar-100-python.tar.gz")
    p.add_argument("--model", default="preact_resnet18")
    p.add_argument("--width", type=int, default=8, help="channels of the first stage")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--milestones", type=int, nargs="*", default=[3], help="0-based epochs where lr drops x0.1")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--schedule", choices=["step", "one_cycle"], default="step",
                   help="step: x0.1 at --milestones; one_cycle: lr/10 up to --lr over --warmup of the steps, then to 0")
    p.add_argument("--warmup", type=float, default=0.2, help="one_cycle's warm-up share of the steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="reference DataLoader workers")
    p.add_argument("--target", type=float, default=0.20, help="val top-1 whose time to reach is reported")
    p.add_argument("--loops", nargs="+", default=["ours", "reference"], choices=["ours", "reference"])
    p.add_argument("--reference-precision", choices=["fp32", "ours"], default="fp32",
                   help="the reference loop in float32 NCHW (as users run it) or on ours' speed path")
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    p.add_argument("--figure", default=None, help="draw val top-1 against wall time as PNG here")
    p.add_argument("--from-json", nargs="+", default=None,
                   help="draw --figure from earlier --out files, training nothing (several: their runs side by side, "
                        "each named by its recipe)")
    p.add_argument("--history", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                   help="add a training_history.csv to the figure (e.g. a kedro run --env cpu)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.from_json:
        import pandas as pd

        reports = []
        for path in args.from_json:
            with open(path) as f:
                reports.append(json.load(f))
        report = merged(reports)
        figure(report, {label: pd.read_csv(csv) for label, csv in args.history}).savefig(args.figure, dpi=110)
        return report

    dataset, index, stats = load_data(args.root)
    data = {f"{s}_{k}": v[index[s]] for s in ("train", "val", "test")
            for k, v in (("x", dataset.images), ("y", dataset.labels))}
    cfg = parse(TrainConfig, recipe(args), "train")
    runs = {"ours": lambda: run_ours(cfg, data, dataset.num_classes, stats),
            "reference": lambda: run_reference(cfg, data, dataset.num_classes, stats, args.workers,
                                               args.reference_precision)}
    results, rows = {}, []
    for name in args.loops:
        results[name] = runs[name]()
        rows.append(summary(name, results[name], args.target))
        log.info("%s done: %s", name, rows[-1])
    device = resolve_device(args.device)
    report = {"recipe": recipe(args), "target": args.target, "rows": rows, "runs": results,
              "path": speed_path(device).describe(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "load_average": os.getloadavg(), "workers": args.workers,
              "openmp_wait": openmp_wait(),
              "reference_precision": args.reference_precision}
    print(table(rows, args.target))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1, default=str)
    if args.figure:
        import pandas as pd

        figure(report, {label: pd.read_csv(csv) for label, csv in args.history}).savefig(args.figure, dpi=110)
    return report


if __name__ == "__main__":
    main()
