"""Per-channel normalisation statistics, from the training images only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from classwise.core.errors import DataError


@dataclass
class NormalizationConfig:
    mode: Literal["computed", "fixed"] = "computed"  # computed on train, or the fixed values below
    mean: float = 0.49  # used when mode is 'fixed' (the seed's value, all channels)
    std: float = 0.25  # used when mode is 'fixed' (the seed's value, all channels)


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each RGB channel of uint8 images, in [0, 1] units."""
    if len(images) == 0:
        raise DataError("The train subset is empty, so there are no normalisation statistics to compute; give every class images beyond split.val_per_class + split.test_per_class.")
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), chunk):  # chunks keep float64 copies small
        block = images[start : start + chunk].reshape(-1, 3).astype(np.float64) / 255.0
        total += block.sum(0)
        total_sq += (block**2).sum(0)
    n = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 1e-12))
    return mean.tolist(), std.tolist()


def normalization_stats(train_images: np.ndarray, cfg: NormalizationConfig) -> dict:
    """The stats the model trains with: computed from ``train_images`` or fixed."""
    if cfg.mode == "fixed":
        mean, std = [cfg.mean] * 3, [cfg.std] * 3
    else:
        mean, std = channel_stats(train_images)
    return {"mode": cfg.mode, "mean": mean, "std": std, "n_images": int(len(train_images))}
