"""Our training step's speed options on one device, timed in one process with interleaved windows.

    PYTHONPATH=src python benchmarks/cpu_paths.py --model preact_resnet18 --model-options '{"width": 16}' \\
        --out cpu_paths.json

Each variant is the training core's own step (classwise.training.TrainStep) fed by its own
batch source (DeviceBatches: on-device crop + flip, the recipe's CutMix and oversampling), with
the next batch prepared on a background thread (``prefetch``) or between steps. The variants'
windows take turns (fp32, fp32+prefetch, ..., fp32, fp32+prefetch, ...), so a shared machine's
load falls on all of them alike; medians of the windows and each variant's ratio to the first are
reported, with torch.compile's compile seconds (the first steps, timed apart). Imports only
torch, torchvision and numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import classwise  # noqa: F401  before torch, for the package's OpenMP setting (throughput.py says why)
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import environment, seed_shaped_data, synchronize, usual_loop  # noqa: E402

from classwise.core.device import cpu_has_native_bf16, to_device_images  # noqa: E402
from classwise.training import DeviceBatches, TrainConfig, TrainStep  # noqa: E402
from classwise.training.batches import prefetched  # noqa: E402

REFERENCE = "reference: DataLoader + PIL, workers = cores, float32 NCHW"
# name -> (amp, channels_last, compile, prefetch); the reference loop is the loop a user would write
VARIANTS = {
    REFERENCE: (False, False, False, False),
    "fp32 NCHW": (False, False, False, False),
    "fp32 NCHW + prefetch": (False, False, False, True),
    "fp32 channels-last": (False, True, False, False),  # what `auto` picks on 2 cores (conf/base)
    "fp32 channels-last + prefetch": (False, True, False, True),
    "fp32 NCHW compiled + prefetch": (False, False, True, True),
    "fp32 channels-last compiled": (False, True, True, False),  # ... and with conf/cpu's compile: auto
    "fp32 channels-last compiled + prefetch": (False, True, True, True),
    "bf16 channels-last + prefetch": (True, True, False, True),
    "bf16 channels-last compiled + prefetch": (True, True, True, True),
}


def endless(batches: DeviceBatches, prefetch: bool) -> Iterator[tuple[torch.Tensor, ...]]:
    while True:
        yield from (prefetched(batches.epoch()) if prefetch else batches.epoch())


def variant_step(name: str, args: argparse.Namespace, images: np.ndarray, labels: np.ndarray,
                 device: torch.device) -> tuple[Callable[[], None], float]:
    """One variant's step, and the seconds its first ``args.warmup`` steps took (compile included)."""
    amp, channels_last, compile_model, prefetch = VARIANTS[name]
    if name == REFERENCE:
        torch.manual_seed(0)
        step, _, _ = usual_loop(args.model, args.model_options, images, labels, args.classes, device,
                                args.batch_size, args.workers)
        return step, warm_up(step, args.warmup, device)
    cfg = TrainConfig(model=args.model, model_options=args.model_options, batch_size=args.batch_size,
                      augment="crop_flip", cutmix_p=args.cutmix_p, label_smoothing=0.1, oversample=True,
                      progress=False, amp=amp, channels_last=channels_last, compile=compile_model, prefetch=prefetch)
    x = to_device_images(images, device)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    batches = DeviceBatches(x, y, args.classes, cfg.batch_size, cfg.augment, cfg.oversample, cfg.cutmix_p,
                            cfg.cutmix_alpha, torch.Generator(device=device).manual_seed(0), np.random.default_rng(0))
    torch.manual_seed(0)
    train_step = TrainStep(cfg, args.classes, [0.49] * 3, [0.25] * 3, device, torch.bincount(y, minlength=args.classes))
    train_step.model.train()
    source = endless(batches, prefetch)

    def step() -> None:
        xb, target, _, _ = next(source)
        train_step(xb, target)

    return step, warm_up(step, args.warmup, device)


def warm_up(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Run ``steps`` untimed steps (torch.compile compiles here); their seconds."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    images, labels = seed_shaped_data(args.images, args.classes)
    names = [n for n in VARIANTS if n in args.variants] if args.variants else list(VARIANTS)
    if not args.variants and device.type == "cpu" and not cpu_has_native_bf16():
        # emulated here: ~10x slower, they would only slow the run
        names = [n for n in names if not n.startswith("bf16")]
    steps, warmup_s = {}, {}
    for name in names:
        steps[name], warmup_s[name] = variant_step(name, args, images, labels, device)
        print(f"{name}: first {args.warmup} steps {warmup_s[name]:.1f} s", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for window in range(args.windows):
        for name in names:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            synchronize(device)
            rates[name].append(args.batch_size * args.steps / (time.perf_counter() - start))
        print(f"window {window + 1}/{args.windows}: " + ", ".join(f"{n} {rates[n][-1]:.0f}" for n in names),
              flush=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    first = medians[names[0]]
    return {
        "environment": {**environment(device), "native_bf16": cpu_has_native_bf16(),
                        "threads": torch.get_num_threads(), "platform": platform.platform()},
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "window_images_per_s": rates,
        "images_per_s": medians,
        "ratio_to_first": {name: m / first for name, m in medians.items()},
        "first_steps_seconds": warmup_s,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/cpu_paths.py", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="preact_resnet18")
    p.add_argument("--model-options", type=json.loads, default={"width": 16}, help='JSON, e.g. \'{"width": 16}\'')
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=8192, help="training images (noise; pixels do not change speed)")
    p.add_argument("--classes", type=int, default=91)
    p.add_argument("--cutmix-p", type=float, default=0.0, help="CutMix probability of the recipe (0: crop + flip)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (torch.compile compiles here)")
    p.add_argument("--steps", type=int, default=10, help="steps in a timed window")
    p.add_argument("--windows", type=int, default=5, help="windows a variant; the median is reported")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers, reference loop")
    p.add_argument("--variants", nargs="*", default=None, help=f"a subset of: reference ({REFERENCE}), {', '.join(list(VARIANTS)[1:])}")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.variants:  # refused here, before any work; "reference" names the reference loop
        args.variants = [REFERENCE if n == "reference" else n for n in args.variants]
        unknown = [n for n in args.variants if n not in VARIANTS]
        if unknown:
            p.error(f"--variants: no variant named {', '.join(map(repr, unknown))}; choose from "
                    f"'reference' and {', '.join(map(repr, list(VARIANTS)[1:]))}.")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps({k: result[k] for k in ("images_per_s", "ratio_to_first", "first_steps_seconds")}, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
