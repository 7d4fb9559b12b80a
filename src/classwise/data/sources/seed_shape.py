"""Per-class image counts shaped like the seed's dataset: 91 classes, 35,384 images, 146..526 a class."""

from __future__ import annotations

import numpy as np

from classwise.core.errors import ConfigError

SEED_CLASSES = 91
SEED_IMAGES = 35_384
SEED_SMALLEST = 146
SEED_LARGEST = 526


def check_shape(classes: int, images: int, smallest: int, largest: int, section: str) -> None:
    """Refuse a shape no list of counts can have, naming the parameters to change."""
    if classes < 2:
        raise ConfigError(f"Parameter '{section}.classes' must be at least 2, got {classes}.")
    if not 1 <= smallest <= largest:
        raise ConfigError(
            f"Parameters '{section}.smallest' ({smallest}) and '{section}.largest' ({largest}) "
            f"must satisfy 1 <= smallest <= largest."
        )
    low = smallest * (classes - 1) + largest
    high = largest * (classes - 1) + smallest
    if smallest == largest:
        low = high = smallest * classes
    if not low <= images <= high:
        raise ConfigError(
            f"Parameter '{section}.images' ({images}) cannot be spread over {classes} classes of "
            f"{smallest} to {largest} images with both extremes present; choose between {low} and {high}."
        )


def seed_like_counts(
    seed: int,
    classes: int = SEED_CLASSES,
    images: int = SEED_IMAGES,
    smallest: int = SEED_SMALLEST,
    largest: int = SEED_LARGEST,
    section: str = "data.synthetic",
) -> np.ndarray:
    """Images per class with exactly this minimum, maximum and total, in a seeded order.

    The seed's mean (379) sits above the middle of its range (336), so the counts
    are drawn from a Beta skewed towards the large end, then nudged one image at a
    time until the total is exact; one class is pinned at each extreme.
    """
    check_shape(classes, images, smallest, largest, section)
    if smallest == largest:
        return np.full(classes, smallest, dtype=np.int64)
    rng = np.random.default_rng(seed)
    inner = classes - 2
    target_mean = (images - smallest - largest) / max(inner, 1)
    share = (target_mean - smallest) / (largest - smallest)  # the Beta's mean, in (0, 1)
    share = min(max(share, 0.02), 0.98)
    concentration = 3.0
    draws = rng.beta(share * concentration, (1 - share) * concentration, inner)
    counts = np.round(smallest + draws * (largest - smallest)).astype(np.int64)
    counts = np.concatenate([[smallest, largest], counts])
    # Nudge inner classes (never the pinned extremes) until the total is exact.
    gap = images - counts.sum()
    while gap != 0:
        step = 1 if gap > 0 else -1
        movable = np.flatnonzero((counts[2:] + step >= smallest) & (counts[2:] + step <= largest)) + 2
        chosen = rng.choice(movable, size=min(abs(gap), len(movable)), replace=False)
        counts[chosen] += step
        gap = images - counts.sum()
    return counts[rng.permutation(classes)]
