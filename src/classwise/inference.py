"""Running a trained network: device choice, normalisation, batched prediction.

Shared by training (validation), evaluation, diagnosis and serving. Torch and numpy only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import UserError
from .models import build_model


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an explicit CUDA request without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
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


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp``; float32 otherwise."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_network(model: dict[str, Any]) -> nn.Module:
    """The network a saved model (``{"config": ..., "state_dict": ...}``) describes, with its weights."""
    config = model["config"]  # other keys (lineage, best epoch, class names) are not needed here
    network = build_model(config["name"], config["num_classes"], **config.get("options", {}))
    network.load_state_dict(model["state_dict"])
    return network


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
) -> np.ndarray:
    """Softmax probabilities (N, classes) for uint8 (N, H, W, 3) images."""
    dev = resolve_device(device)
    model = model.to(dev)
    x = to_device_images(images, dev)
    logits = predict_logits(model, x, Normalizer(mean, std, dev), batch_size)
    return torch.softmax(logits, 1).cpu().numpy()
