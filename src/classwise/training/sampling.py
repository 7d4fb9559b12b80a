"""Which training images an epoch visits, drawn on the training device.

``class_balanced_indices`` has torch.utils.data.WeightedRandomSampler's semantics
(weights 1 / class count, with replacement, as many draws as images) but draws
with ``torch.multinomial`` on the device, so the uint8 images never leave it.
"""

from __future__ import annotations

import torch


def shuffled_indices(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Every image once, in a random order."""
    return torch.randperm(n, device=device, generator=generator)


def class_balance_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Weight 1 / (images of its class) per image, so every class carries the same total weight."""
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)
    return (1.0 / counts.clamp(min=1))[labels]


def class_balanced_indices(
    labels: torch.Tensor, num_classes: int, generator: torch.Generator, num_samples: int | None = None
) -> torch.Tensor:
    """``num_samples`` (default: all images) draws with replacement, classes near-uniform."""
    weights = class_balance_weights(labels, num_classes).to(torch.float32)
    n = len(labels) if num_samples is None else num_samples
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def epoch_indices(
    labels: torch.Tensor, num_classes: int, oversample: bool, generator: torch.Generator
) -> torch.Tensor:
    """The image order of one epoch: a shuffle, or class-balanced draws when ``oversample``."""
    if oversample:
        return class_balanced_indices(labels, num_classes, generator)
    return shuffled_indices(len(labels), generator, labels.device)
