"""scikit-learn's bundled handwritten digits as an imbalanced 32x32 RGB demo set (offline)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from .base import LabelledImages, SourceResult


def imbalanced_keep_counts(counts: np.ndarray, min_fraction: float, seed: int) -> np.ndarray:
    """How many images each class keeps: fractions spread evenly from 1 down to ``min_fraction``.

    Which class gets which fraction is a seeded permutation, so size does not follow
    the digit's identity. The seed's data spans 146..526 a class, a ratio of 0.28.
    """
    rng = np.random.default_rng(seed)
    fractions = np.linspace(1.0, min_fraction, len(counts))[rng.permutation(len(counts))]
    return np.maximum(1, np.round(counts * fractions)).astype(int)


def load_digits_source(image_size: int = 32, min_fraction: float = 0.28, seed: int = 0) -> SourceResult:
    """The 1,797 8x8 digits, upscaled (bilinear) to ``image_size`` and cut to an imbalanced set."""
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(
            f"Parameter 'data.digits.min_fraction' must be in (0, 1], got {min_fraction}."
        )
    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # N,1,8,8 in [0,1]
    big = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1)
    labels = bunch.target.astype(np.int64)

    rng = np.random.default_rng(seed)
    keep_counts = imbalanced_keep_counts(np.bincount(labels), min_fraction, seed)
    keep = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(keep_counts)]
    )
    keep.sort()
    data = LabelledImages(
        images=images.numpy()[keep],
        labels=labels[keep],
        class_names=[str(d) for d in range(10)],
        ids=[f"digits/{i:04d}" for i in keep],
    )
    return SourceResult(data=data, summary={"available": len(labels), "kept": len(keep)})
