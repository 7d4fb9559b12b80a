"""scikit-learn's bundled handwritten digits as an imbalanced 32x32 RGB demo set (offline)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from classwise.data.sources.base import LabelledImages, SourceResult
from classwise.core.errors import ConfigError


def imbalanced_keep_counts(counts: np.ndarray, min_fraction: float, seed: int) -> np.ndarray:
    """How many images each class keeps: fractions spread evenly from 1 down to ``min_fraction``.

    Which class gets which fraction is a seeded permutation, so size does not follow
    the digit's identity. The seed's data spans 146..526 a class, a ratio of 0.28.
    """
    rng = np.random.default_rng(seed)
    fractions = np.linspace(1.0, min_fraction, len(counts))[rng.permutation(len(counts))]
    return np.maximum(1, np.round(counts * fractions)).astype(int)


def jitter(images: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """A random small rotation (+-15 deg), scale (+-10%) and shift (+-4%) per image, plus pixel noise.

    Clean upscaled digits are classified perfectly, which leaves per-class F1 and its
    correlation with class size nothing to show; a little jitter makes a few errors.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(images)
    angle = (torch.rand(n, generator=g) - 0.5) * 2 * 0.26
    scale = 1 + (torch.rand(n, generator=g) - 0.5) * 0.2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, :, 2] = (torch.rand(n, 2, generator=g) - 0.5) * 2 * 0.08
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, align_corners=False)
    return moved + noise * torch.randn(moved.shape, generator=g)


def load_digits_source(
    image_size: int = 32, min_fraction: float = 0.28, noise: float = 0.12, seed: int = 0
) -> SourceResult:
    """The 1,797 8x8 digits, upscaled (bilinear) to ``image_size``, jittered, cut to an imbalanced set.

    ``noise`` is the pixel-noise standard deviation (0..1 scale); 0 also turns the
    geometric jitter off and gives the clean digits.
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ConfigError(
            f"Parameter 'data.digits.min_fraction' must be in (0, 1], got {min_fraction}."
        )
    from sklearn.datasets import load_digits  # here, so the package imports without scikit-learn

    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # N,1,8,8 in [0,1]
    big = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    if noise > 0:
        big = jitter(big, noise, seed)
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
