"""Training throughput: Classwise's loop against the usual DataLoader loop, one process.

    python benchmarks/throughput.py --model preact_se_wrn_28_10 --batch-size 128 --out bench.json

Both loops train the same model on seed-shaped data (91 classes, 35,384 images of
32x32 by default) for a number of steps; throughput is the median over timed windows
after a warm-up, with the device synchronised at every window edge. Imports only
torch, torchvision and numpy, so it runs on a bare GPU machine.

* ours: the training core's step (classwise.training.TrainStep): the whole train
  set on the device as uint8, batched on-device crop/flip and CutMix, bf16 autocast
  and channels_last where ``core.device.speed_path`` picks them (CUDA, CPUs with
  native bf16), optionally torch.compile.
* usual fp32 / usual amp+cl: a torch DataLoader over PIL images with per-image
  torchvision transforms (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize),
  workers = CPU count, pinned memory, as in torchvision's reference scripts: fp32
  eager, and with their bf16 autocast + channels-last where the device has them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import classwise  # noqa: F401  first, before torch: its OpenMP wait setting (PASSIVE unless you set one) applies
# here as in `kedro run`; imported after torch it would not, and the step would time ~20% apart (docs/benchmarks.md)
import numpy as np
import torch
from torch import nn

from classwise.core.device import SpeedPath, autocast, cpu_has_native_bf16, speed_path
from classwise.models import build_model

SEED_CLASS_COUNT = 91
SEED_IMAGE_COUNT = 35_384


@dataclass
class LoopResult:
    name: str
    images_per_s: float  # median over the timed windows
    window_images_per_s: list[float]
    step_flops: float  # FLOPs of one training step on one batch (forward + backward)
    tflops: float  # achieved, at the median throughput
    share_of_peak: float | None  # tflops / measured peak of the device
    peak_memory_gib: float | None  # CUDA only
    extra: dict[str, Any] = field(default_factory=dict)


def seed_shaped_data(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images and labels with the seed's class sizes (146..526 a class at full size).

    Pixel values do not change throughput, so noise stands in for images.
    """
    from classwise.data.sources.seed_shape import SEED_LARGEST, SEED_SMALLEST, seed_like_counts

    smallest = min(SEED_SMALLEST, n // classes)
    largest = max(min(SEED_LARGEST, n - smallest * (classes - 1)), smallest)
    counts = seed_like_counts(seed, classes, n, smallest, largest, section="benchmark")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(classes), counts))
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), labels


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_flops(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor) -> float:
    """FLOPs of one forward + backward pass, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = nn.functional.cross_entropy(model(batch), labels)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def measured_peak_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192, reps: int = 20) -> float:
    """Dense matrix-product rate of the device in ``dtype``, measured (not the datasheet)."""
    if device.type == "cpu":
        size, reps = 1024, 5
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


def timed_windows(
    step: Callable[[], None], device: torch.device, images_per_step: int, warmup: int, windows: int, steps: int
) -> list[float]:
    """Images/s of each window of ``steps`` steps, after ``warmup`` untimed steps."""
    for _ in range(warmup):
        step()
    synchronize(device)
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        rates.append(images_per_step * steps / (time.perf_counter() - start))
    return rates


def openmp_wait() -> dict[str, str | None]:
    """What torch's idle OpenMP threads do: the package's PASSIVE, or the user's policy / spin count."""
    return {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "openmp_wait": openmp_wait(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            env["driver"] = "unknown"
        env["cuda"] = torch.version.cuda
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def pil_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int, device: torch.device,
               mean: Sequence[float], std: Sequence[float], train: bool = True):
    """The torchvision-reference input pipeline: a DataLoader over PIL images with per-image transforms
    (RandomCrop(32, 4) + RandomHorizontalFlip when ``train``), pinned memory on CUDA, persistent workers."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(mean, std)])
    return DataLoader(
        PILImages(images, labels, transform), batch_size=batch_size, shuffle=train, drop_last=train,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )


class PILImages:
    """uint8 (N, H, W, 3) images served one at a time as PIL images through ``transform``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def usual_loop(
    model_name: str, model_options: dict, images: np.ndarray, labels: np.ndarray, classes: int,
    device: torch.device, batch_size: int, workers: int, strong: bool = False,
) -> tuple[Callable[[], None], nn.Module, Callable[[], Any]]:
    """The torchvision-reference way: DataLoader over PIL images, per-image transforms; fp32 eager, or with
    ``strong`` the reference scripts' bf16 autocast + channels-last where ``speed_path`` says the device
    has them (a careful user's loop, not a straw man)."""
    model = build_model(model_name, classes, **model_options).to(device)
    path = speed_path(device, model=model) if strong else SpeedPath(False, False, "fp32 eager")
    loader = pil_loader(images, labels, batch_size, workers, device, (0.49,) * 3, (0.25,) * 3)
    memory_format = torch.channels_last if path.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    state = {"it": iter(loader)}

    def next_batch():
        try:
            x, y = next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            x, y = next(state["it"])
        return x.to(device, non_blocking=True, memory_format=memory_format), y.to(device, non_blocking=True)

    def step() -> None:
        x, y = next_batch()
        with autocast(device, path.amp):
            loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, model, next_batch


def ours_loop(
    model_name: str, model_options: dict, images: np.ndarray, labels: np.ndarray, classes: int,
    device: torch.device, batch_size: int, compile_model: bool, amp: Any = "auto", channels_last: Any = "auto",
) -> tuple[Callable[[], None], nn.Module, Callable[[], Any]]:
    """The training core's own step, with the seed's final recipe (crop/flip, CutMix, smoothing, oversampling)."""
    from classwise.core.device import to_device_images
    from classwise.training import DeviceBatches, TrainConfig, TrainStep

    # TrainConfig's defaults are the study's final recipe.
    cfg = TrainConfig(model=model_name, model_options=model_options, batch_size=batch_size, compile=compile_model,
                      progress=False, amp=amp, channels_last=channels_last)
    generator = torch.Generator(device=device).manual_seed(0)
    x = to_device_images(images, device)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    batches = DeviceBatches(x, y, classes, batch_size, cfg.augment, cfg.oversample, cfg.cutmix_p, cfg.cutmix_alpha,
                            generator, np.random.default_rng(0))
    train_step = TrainStep(cfg, classes, [0.49] * 3, [0.25] * 3, device, torch.bincount(y, minlength=classes))
    state = {"order": batches.order(), "at": 0}

    def next_indices() -> torch.Tensor:
        if state["at"] + batch_size > len(state["order"]):
            state["order"], state["at"] = batches.order(), 0
        state["at"] += batch_size
        return state["order"][state["at"] - batch_size : state["at"]]

    def step() -> None:
        xb, target, _, _ = batches.batch(next_indices())
        train_step(xb, target)

    def sample() -> tuple[torch.Tensor, torch.Tensor]:
        idx = next_indices()
        return train_step.normalize(x[idx]), y[idx]

    train_step.model.train()
    return step, train_step.model, sample


def measure(
    name: str, step: Callable[[], None], model: nn.Module, sample: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    device: torch.device, batch_size: int, args: argparse.Namespace, peak: float | None,
) -> LoopResult:
    """Count one step's FLOPs, then time the loop; peak GPU memory covers the timed part."""
    x, y = sample()
    flops = step_flops(model, x.to(device).float(), y.to(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = timed_windows(step, device, batch_size, args.warmup, args.windows, args.steps)
    median = statistics.median(rates)
    tflops = flops / batch_size * median / 1e12
    return LoopResult(
        name=name,
        images_per_s=median,
        window_images_per_s=rates,
        step_flops=flops,
        tflops=tflops,
        share_of_peak=tflops / peak if peak else None,
        peak_memory_gib=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    )


def compare_paths(args: argparse.Namespace, device: torch.device, images: np.ndarray,
                  labels: np.ndarray) -> dict[str, Any]:
    """Our step in float32 NCHW against bf16 autocast + channels-last, windows interleaved in one process so
    that a shared machine's load falls on both alike; medians and their ratio."""
    loops = {name: ours_loop(args.model, args.model_options, images, labels, args.classes, device,
                             args.batch_size, args.compile, amp, amp)[0]
             for name, amp in (("fp32", False), ("bf16+cl", True))}
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for name, step in loops.items():
        timed_windows(step, device, args.batch_size, args.warmup, 0, args.steps)
    for _ in range(args.windows):
        for name, step in loops.items():
            rates[name] += timed_windows(step, device, args.batch_size, 0, 1, args.steps)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    return {"window_images_per_s": rates, "images_per_s": medians, "ratio": medians["bf16+cl"] / medians["fp32"],
            "native_bf16": device.type == "cuda" or cpu_has_native_bf16(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def format_table(env: dict[str, Any], args: argparse.Namespace, results: list[LoopResult], peak: float | None) -> str:
    where = env.get("gpu") or env.get("cpu")
    lines = [
        f"model {args.model} {args.model_options or ''}, batch {args.batch_size}, {args.images} images, "
        f"{args.classes} classes",
        f"device {where} (driver {env.get('driver', '-')}), torch {env['torch']}, "
        f"measured peak {peak:.1f} TFLOP/s ({args.peak_dtype})" if peak else f"device {where}, torch {env['torch']}",
        "",
        f"| loop | images/s (median of {args.windows}) | TFLOP/s | share of peak | peak GPU memory |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        share = f"{r.share_of_peak:.1%}" if r.share_of_peak is not None else "-"
        memory = f"{r.peak_memory_gib:.1f} GiB" if r.peak_memory_gib is not None else "-"
        lines.append(f"| {r.name} | {r.images_per_s:,.0f} | {r.tflops:.3g} | {share} | {memory} |")
    if len(results) > 1:
        lines.append("")
        lines.extend(f"{results[0].name} / {r.name}: {results[0].images_per_s / r.images_per_s:.2f}x"
                     for r in results[1:] if r.images_per_s > 0)
    return "\n".join(lines)


def _switch(text: str) -> bool | str:
    choices = {"auto": "auto", "true": True, "false": False}
    if text.lower() not in choices:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto, true or false")
    return choices[text.lower()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/throughput.py", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="preact_se_wrn_28_10", help="a name from classwise.models.available_models()")
    p.add_argument("--model-options", type=json.loads, default={}, help='JSON, e.g. \'{"width": 8}\'')
    p.add_argument("--batch-size", type=int, default=128, help="the seed's 128 by default")
    p.add_argument("--images", type=int, default=SEED_IMAGE_COUNT, help="training images (seed: 35,384)")
    p.add_argument("--classes", type=int, default=SEED_CLASS_COUNT, help="classes (seed: 91)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (compile, cudnn autotune)")
    p.add_argument("--steps", type=int, default=50, help="steps in a timed window")
    p.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.add_argument("--amp", type=_switch, default="auto", help="our bf16 autocast: auto (CUDA, CPUs with native "
                   "bf16), true or false")
    p.add_argument("--channels-last", type=_switch, default="auto", help="our NHWC layout: auto, true or false")
    p.add_argument("--skip-usual", action="store_true", help="time only our loop")
    p.add_argument("--compare-paths", action="store_true", help="only time our step in float32 NCHW against "
                   "bf16 + channels-last, interleaved, and print the ratio")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers, usual loop")
    p.add_argument("--peak-dtype", default=None, help="dtype of the peak measurement (bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from classwise.core.device import resolve_device

    args = parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    args.peak_dtype = args.peak_dtype or ("bf16" if device.type == "cuda" else "fp32")
    peak = measured_peak_tflops(device, torch.bfloat16 if args.peak_dtype == "bf16" else torch.float32)
    images, labels = seed_shaped_data(args.images, args.classes)
    if args.compare_paths:
        report = {"environment": environment(device), "settings": {k: v for k, v in vars(args).items() if k != "out"},
                  "paths": compare_paths(args, device, images, labels)}
        paths = report["paths"]
        print(f"ours float32 NCHW {paths['images_per_s']['fp32']:,.0f} img/s, bf16 + channels-last "
              f"{paths['images_per_s']['bf16+cl']:,.0f} img/s (medians of {args.windows} interleaved windows): "
              f"{paths['ratio']:.2f}x; native bf16: {paths['native_bf16']}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2)
        return report
    results = []

    step, model, sample = ours_loop(args.model, args.model_options, images, labels, args.classes, device,
                                    args.batch_size, args.compile, args.amp, args.channels_last)
    results.append(measure("ours", step, model, sample, device, args.batch_size, args, peak))
    del step, model, sample
    if not args.skip_usual:
        # The fp32 eager row is the reference scripts' default; the strong row adds their bf16 AMP and
        # channels-last where this device computes bf16 natively (CUDA, a CPU with native bf16).
        strong = speed_path(device)
        loops = [("usual fp32", False)] + ([("usual amp+cl", True)] if strong.amp else [])
        for name, strong in loops:
            if device.type == "cuda":
                torch.cuda.empty_cache()
            step, model, sample = usual_loop(args.model, args.model_options, images, labels, args.classes,
                                             device, args.batch_size, args.workers, strong)
            results.append(measure(name, step, model, sample, device, args.batch_size, args, peak))
            del step, model, sample

    env = environment(device)
    report = {
        "environment": env,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "measured_peak_tflops": peak,
        "results": [asdict(r) for r in results],
        "speedup": results[0].images_per_s / results[1].images_per_s if len(results) > 1 else None,
        "speedups": {r.name: results[0].images_per_s / r.images_per_s for r in results[1:]},
    }
    print(format_table(env, args, results, peak))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
