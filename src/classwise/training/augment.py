"""Batched augmentation on the training device, one random draw per image.

torchvision's v2 transforms draw one set of random parameters per call, so a
per-image draw with them needs a Python loop over the batch; these functions draw
per image with tensor ops instead and keep the hot loop free of Python per image.
Measured on a shared 2-core CPU (torch 2.14.1, one thread, a batch of 128 32x32
images, median of 15, two runs): the seed's four v2 transforms called image by
image take 88-135 ms a batch, ``seed_heavy`` here 16-19 ms; on a GPU the
per-image loop would also launch hundreds of tiny kernels a batch. Input and output are uint8 (B, 3, H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from classwise.core.errors import ConfigError

AUGMENTATIONS = ("none", "crop_flip", "seed_heavy")

# The seed names its augmentations (RandomCrop, ColorJitter, RandomRotation,
# RandomGrayscale) but not their strengths; these are the common CIFAR settings.
HEAVY_PADDING = 4  # RandomCrop(32, padding=4)
HEAVY_JITTER = 0.2  # ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2)
HEAVY_DEGREES = 15.0  # RandomRotation(15), nearest neighbour, zero fill
HEAVY_GRAYSCALE_P = 0.1  # RandomGrayscale(p=0.1)

_GRAY = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, the weights torchvision's rgb_to_grayscale uses


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


def _uniform(b: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(b, device=like.device, generator=generator, dtype=torch.float32)
    return (low + (high - low) * u)[:, None, None, None]


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(1)


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None) -> torch.Tensor:
    """Brightness, contrast, saturation, each by a factor in [1 - s, 1 + s] drawn per image.

    Float (B, 3, H, W) in [0, 255]. The formulas are torchvision's adjust_* ones; the
    order is fixed (torchvision shuffles it per call), which changes little at s = 0.2.
    """
    b = x.shape[0]
    lo, hi = max(0.0, 1 - strength), 1 + strength
    x = (x * _uniform(b, lo, hi, x, generator)).clamp(0, 255)
    f = _uniform(b, lo, hi, x, generator)
    x = (f * x + (1 - f) * _gray(x).mean((1, 2, 3), keepdim=True)).clamp(0, 255)
    f = _uniform(b, lo, hi, x, generator)
    return (f * x + (1 - f) * _gray(x)).clamp(0, 255)


def random_rotation(x: torch.Tensor, degrees: float, generator: torch.Generator | None) -> torch.Tensor:
    """Rotate each image about its centre by an angle in [-degrees, degrees]; nearest, zero fill."""
    b = x.shape[0]
    angle = _uniform(b, -degrees, degrees, x, generator).view(b) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def random_grayscale(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Replace each image by its luma in all three channels with probability ``p``."""
    pick = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return torch.where(pick[:, None, None, None], _gray(x).expand_as(x), x)


def seed_heavy(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The seed's first augmentation set: crop, colour jitter, rotation, grayscale (uint8 in and out)."""
    out = random_crop(x, HEAVY_PADDING, generator).float()
    out = color_jitter(out, HEAVY_JITTER, generator)
    out = random_rotation(out, HEAVY_DEGREES, generator)
    out = random_grayscale(out, HEAVY_GRAYSCALE_P, generator)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def augment_batch(x: torch.Tensor, preset: str, generator: torch.Generator | None) -> torch.Tensor:
    """Apply augmentation ``preset`` (one of AUGMENTATIONS) to a uint8 batch."""
    if preset == "none":
        return x
    if preset == "crop_flip":
        return random_hflip(random_crop(x, 4, generator), generator)
    if preset == "seed_heavy":
        return seed_heavy(x, generator)
    raise ConfigError(f"Unknown augmentation '{preset}'; choose one of: {', '.join(AUGMENTATIONS)}.")
