"""Batched augmentation on the training device, one random draw per image.

torchvision's v2 transforms draw one set of random parameters per call, so a
per-image draw would need a Python loop over the batch; these functions draw
per image with tensor ops instead and keep the hot loop free of Python per image.
Input and output are uint8 (B, 3, H, W) tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "crop_flip")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random HxW window from each image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # B,1,H,1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # B,1,1,W
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator | None, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment_batch(x: torch.Tensor, preset: str, generator: torch.Generator | None) -> torch.Tensor:
    """Apply augmentation ``preset`` (one of AUGMENTATIONS) to a uint8 batch."""
    if preset == "none":
        return x
    if preset == "crop_flip":
        return random_hflip(random_crop(x, 4, generator), generator)
    raise ValueError(f"Unknown augmentation '{preset}'; choose one of: {', '.join(AUGMENTATIONS)}.")
