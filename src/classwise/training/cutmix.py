"""CutMix (Yun et al. 2019) on a batch, with soft targets that follow the pasted area.

As in torchvision.transforms.v2.CutMix: with probability ``p`` a batch gets one
box, its area ratio drawn from Beta(alpha, alpha), pasted from partner images
given by a permutation of the batch; the label weight is the box's area after
clipping to the image. The scalar draws (apply?, lambda, box centre) come from a
numpy Generator on the host, so no step waits on the device; the permutation is
drawn on the device. torchvision's CutMix is not called directly because it
draws from the global RNG, which a resumed run could not replay exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def cutmix_box(
    height: int, width: int, p: float, alpha: float, rng: np.random.Generator
) -> tuple[int, int, int, int] | None:
    """The box (y1, y2, x1, x2) to paste, or None when this batch is left alone."""
    if p <= 0 or rng.random() >= p:
        return None
    lam = float(rng.beta(alpha, alpha))
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    half_h = int(height * math.sqrt(1.0 - lam)) // 2
    half_w = int(width * math.sqrt(1.0 - lam)) // 2
    y1, y2 = max(cy - half_h, 0), min(cy + half_h, height)
    x1, x2 = max(cx - half_w, 0), min(cx + half_w, width)
    return y1, y2, x1, x2


def cutmix(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    p: float,
    alpha: float,
    rng: np.random.Generator,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, C, H, W) and integer labels -> mixed images and soft targets (B, num_classes).

    Each row of the targets sums to 1; the partner's class gets exactly the share of
    pixels pasted from it. The input batch is not modified; a batch left alone is returned
    as the very same tensor (the batch source tells mixed batches from plain ones by that).
    """
    targets = F.one_hot(labels, num_classes).to(torch.float32)
    box = cutmix_box(images.shape[-2], images.shape[-1], p, alpha, rng)
    if box is None:
        return images, targets
    y1, y2, x1, x2 = box
    perm = torch.randperm(len(images), device=images.device, generator=generator)
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images[perm][..., y1:y2, x1:x2]
    pasted = (y2 - y1) * (x2 - x1) / (images.shape[-2] * images.shape[-1])
    return mixed, targets * (1.0 - pasted) + targets[perm] * pasted
