"""The device and its speed path (bf16, channels-last), normalisation on the device, batched prediction.

Shared by training (validation), evaluation, diagnosis and serving. Torch and numpy only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
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
               prefetch: Switch = "auto") -> SpeedPath:
    """Resolve ``auto`` for ``device``, as measured (docs/benchmarks.md, benchmarks/cpu_paths.py):

    * amp (bf16 autocast): on CUDA and on a CPU with native bf16; off on other CPUs, where oneDNN
      emulates bf16 at ~10x the cost of float32.
    * channels-last: as amp. In float32 on a 2-core AVX2 EPYC it ran a width-16 preact ResNet-18
      training step 1.25x faster than NCHW (32x32, batch 128), but the same path on a width-4 net,
      16x16 images, batch 4, aborted in backward with "double free or corruption" (torch 2.14.1,
      oneDNN), so ``auto`` keeps NCHW there; ``channels_last: true`` still asks for it.
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
        fast = layout = cpu_has_native_bf16()
        why = "CPU with native bf16" if fast else "CPU without native bf16 (AVX512-BF16/AMX)"
    else:
        fast, layout, why = False, False, f"device type {device.type}"
    use_amp = fast if amp == "auto" else bool(amp)
    use_cl = layout if channels_last == "auto" else bool(channels_last)
    asked = [f"{k}={v}" for k, v in (("amp", amp), ("channels_last", channels_last)) if v != "auto"]
    reason = why + (f"; set {', '.join(asked)}" if asked else "; auto")
    if use_amp and bf16_is_emulated(device):
        reason += "; bf16 is emulated on this CPU and slower than float32"
    spare_core = device.type == "cuda" or (os.cpu_count() or 1) > torch.get_num_threads()
    return SpeedPath(use_amp, use_cl, reason, prefetch=spare_core if prefetch == "auto" else bool(prefetch))


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
    path = speed_path(dev, amp, channels_last)
    log.debug("Predicting on %s: %s.", dev, path.describe())
    model = model.to(dev, memory_format=torch.channels_last if path.channels_last else torch.contiguous_format)
    x = to_device_images(images, dev)
    logits = predict_logits(model, x, Normalizer(mean, std, dev, channels_last=path.channels_last), batch_size,
                            path.amp)
    return torch.softmax(logits, 1).cpu().numpy()
