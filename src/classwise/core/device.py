"""The device and its speed path (bf16, channels-last), normalisation on the device, batched prediction.

Shared by training (validation), evaluation, diagnosis and serving. Torch and numpy only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from classwise.core.errors import RunError

log = logging.getLogger(__name__)

Switch = bool | Literal["auto"]  # train.amp / train.channels_last: on, off, or chosen for the hardware


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an explicit CUDA request without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(
            f"The device '{name}' was asked for, but no CUDA GPU is visible; set the device "
            f"parameter (train.device, evaluate.device) to 'auto' or 'cpu'."
        )
    return device


def to_device_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, 3) numpy -> uint8 (N, 3, H, W) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous()


class Normalizer:
    """uint8 batch -> float batch, ``(x / 255 - mean) / std`` per channel, fused as x*a+b."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device,
                 channels_last: bool = False) -> None:
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * self.scale + self.shift).contiguous(memory_format=self.memory_format)


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX on x86, BF16 on Arm).

    Without it oneDNN emulates bf16, which measured 8-14x slower than float32 on a 2-core
    AVX2 EPYC (docs/benchmarks.md), so ``auto`` stays in float32 there.
    """
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class SpeedPath:
    """The numeric path a device runs: bf16 autocast or float32, channels-last or NCHW, and why."""

    amp: bool
    channels_last: bool
    reason: str
    prefetch: bool = False  # training: the next batch prepared on a background thread during the step

    def describe(self) -> str:
        dtype = "bf16 autocast" if self.amp else "float32"
        layout = "channels-last" if self.channels_last else "NCHW"
        batches = ", next batch prepared during the step" if self.prefetch else ""
        return f"{dtype}, {layout}{batches} ({self.reason})"


def speed_path(device: torch.device, amp: Switch = "auto", channels_last: Switch = "auto",
               prefetch: Switch = "auto", model: nn.Module | None = None) -> SpeedPath:
    """Resolve ``auto`` for ``device``, as measured (docs/benchmarks.md, benchmarks/cpu_paths.py):

    * amp (bf16 autocast): on CUDA and on a CPU with native bf16; off on other CPUs, where oneDNN
      emulates bf16 at ~10x the cost of float32.
    * channels-last: on CUDA and on every CPU. In float32 on 2-core AVX2 EPYCs it ran a width-16
      preact ResNet-18 training step 1.14-1.25x faster than NCHW (32x32, batch 128); with native bf16,
      bf16 + channels-last ran 2.1x float32 NCHW. One exception, given ``model``: in float32 on the CPU,
      a strided 1x1 convolution with 2-4 input channels hangs or aborts in channels-last (torch 2.14.1,
      oneDNN 3.12, AVX2), so ``auto`` keeps a network with any convolution that narrow NCHW there
      (``narrow_convs``).
    * prefetch (training): on CUDA, and on a CPU with a core the step's torch threads leave free; off
      when the step already uses every core (2 torch threads on 2 cores: there the batch thread
      measured +1%, within noise, and competes with the step when the machine is busy).

    An explicit True or False is honoured on any device (on a CPU without native bf16, bf16 is
    emulated and slow, which the reason says). The one place that decides, for training,
    evaluation and prediction alike.
    """
    if device.type == "cuda":
        fast, layout, why = True, True, "CUDA"
    elif device.type == "cpu":
        fast = cpu_has_native_bf16()
        layout = True
        why = "CPU with native bf16" if fast else "CPU without native bf16 (AVX512-BF16/AMX)"
    else:
        fast, layout, why = False, False, f"device type {device.type}"
    use_amp = fast if amp == "auto" else bool(amp)
    use_cl = layout if channels_last == "auto" else bool(channels_last)
    asked = [f"{k}={v}" for k, v in (("amp", amp), ("channels_last", channels_last)) if v != "auto"]
    reason = why + (f"; set {', '.join(asked)}" if asked else "; auto")
    if use_amp and bf16_is_emulated(device):
        reason += "; bf16 is emulated on this CPU and slower than float32"
    risky = narrow_convs(model) if (model is not None and use_cl and not use_amp
                                            and device.type == "cpu") else []
    if risky and channels_last == "auto":
        use_cl = False
        reason += (f"; NCHW because {risky[0]} has under 8 input channels, a width on which float32 "
                   f"channels-last hung on the CPU")
    elif risky:
        log.warning("channels_last is true, but convolution %s has under 8 input channels, a width on which "
                    "float32 channels-last hung or aborted on the CPU (torch 2.14.1, oneDNN); set "
                    "channels_last: auto to run this network in NCHW.", risky[0])
    spare_core = device.type == "cuda" or (os.cpu_count() or 1) > torch.get_num_threads()
    return SpeedPath(use_amp, use_cl, reason, prefetch=spare_core if prefetch == "auto" else bool(prefetch))


# A run of at least this many training steps compiles under ``compile: auto`` (on the CPU). Measured on
# 2-core EPYCs, width-16 preact ResNet-18, batch 128 (docs/benchmarks.md): inductor compiled for 20-54 s
# and then gained 9-11% a step (~0.03 s), so it repays itself after ~700-1,800 steps; 2,000 keeps the
# demo, the tests and the diagnose folds (a few hundred steps) eager, and compiles a seed-like run
# (262 steps an epoch) of 8 epochs or more.
COMPILE_MIN_STEPS = 2000


def compile_choice(device: torch.device, asked: Switch, planned_steps: int | None) -> tuple[bool, str]:
    """Whether to ``torch.compile`` a training of ``planned_steps`` steps, and why (for the log).

    ``auto`` compiles on a CPU with a C++ compiler when the run has ``COMPILE_MIN_STEPS`` steps or
    more; not on CUDA, where compiling was not measured yet (``compile: true`` asks for it).
    """
    if asked != "auto":
        return bool(asked), f"compile={asked}"
    if device.type != "cpu":
        return False, f"compile auto: off on {device.type} (not measured there; compile: true asks for it)"
    if planned_steps is None or planned_steps < COMPILE_MIN_STEPS:
        return False, (f"compile auto: off, {planned_steps or 0} steps are under {COMPILE_MIN_STEPS}, too few to "
                       f"repay its 20-50 s of compiling")
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        return False, f"compile auto: off, no C++ compiler ({compiler}) for inductor on this machine"
    return True, f"compile auto: on, {planned_steps} steps repay its 20-50 s of compiling"


def narrow_convs(model: nn.Module) -> list[str]:
    """Names of ``model``'s convolutions with under 8 input channels, the first (the image's) apart.

    In float32 channels-last on the CPU, a strided 1x1 convolution with 2-4 input channels (the
    shortcut of a width-4 ResNet, 4 -> 8 channels, stride 2) hung or aborted with "double free or
    corruption" in most runs (torch 2.14.1, oneDNN 3.12, a 2-core AVX2 EPYC; 1 and 5-8 input channels
    ran, and so did width-6 to width-16 ResNets), so ``auto`` leaves any network this narrow in NCHW.
    """
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return [name for name, m in convs[1:] if m.in_channels < 8]


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a training step frees, for the next step; True when set.

    By default glibc serves blocks over a few MB with fresh mmap()s and returns freed heap tops to
    the kernel, so a CPU training step's activations (8 MB each for batch 128 at 32x32, 16 channels)
    are page-faulted in anew every step: ~17,000 page faults a step, measured, for a width-16 preact
    ResNet-18. Serving blocks up to 32 MB (glibc's ceiling) from the heap and trimming only above
    1 GB cut the faults to a third (docs/benchmarks.md). The process then keeps its peak memory
    until it exits. Process-wide; a no-op (False) off glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def bf16_is_emulated(device: torch.device) -> bool:
    """True on a CPU without native bf16, where bf16 autocast runs about 10x slower than float32."""
    return device.type == "cpu" and not cpu_has_native_bf16()


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA or the CPU when ``amp``; float32 otherwise."""
    if amp and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    normalize: Normalizer,
    batch_size: int,
    amp: bool = False,
) -> torch.Tensor:
    """Logits (float32) of uint8 NCHW ``images`` already on the model's device, batched."""
    model.eval()
    with autocast(images.device, amp):
        outs = [model(normalize(images[i : i + batch_size])).float() for i in range(0, len(images), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    device: str = "auto",
    batch_size: int = 1024,
    amp: Switch = "auto",
    channels_last: Switch = "auto",
) -> np.ndarray:
    """Softmax probabilities (N, classes) for uint8 (N, H, W, 3) images, on the path ``speed_path`` picks."""
    dev = resolve_device(device)
    path = speed_path(dev, amp, channels_last, model=model)
    log.debug("Predicting on %s: %s.", dev, path.describe())
    model = model.to(dev, memory_format=torch.channels_last if path.channels_last else torch.contiguous_format)
    x = to_device_images(images, dev)
    logits = predict_logits(model, x, Normalizer(mean, std, dev, channels_last=path.channels_last), batch_size,
                            path.amp)
    return torch.softmax(logits, 1).cpu().numpy()
