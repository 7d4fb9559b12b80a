"""Generated 32x32 colour images in the seed's shape: learnable, not trivial, optionally noisy.

Each class is a coloured shape at its own place over a colour field of its own; an
image shows the shape moved and recoloured a little over a field that is only
partly the class's, re-lit, sometimes partly occluded, and noised. Classes
(0, 1), (2, 3), ... up to ``similar_pairs`` pairs share field, shape and place and
differ only a little in the shape's colour, so a model confuses them as the seed's
model confused look-alike classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classwise.core.errors import ConfigError
from classwise.data.sources.base import LabelledImages, SourceResult
from classwise.data.sources.seed_shape import SEED_CLASSES, SEED_IMAGES, SEED_LARGEST, SEED_SMALLEST, seed_like_counts

SHAPES = ("disc", "square", "ring", "cross", "triangle", "hstripes", "vstripes", "diagonal")
SHIFT = 4  # a shape moves up to this many pixels each way from its class's place
FIELD_WEIGHT = 0.45  # share of the background that is the class's own; the rest is per image
COLOUR_JITTER = 20.0  # per-image spread of the shape's colour, in uint8 units
NOISE_STD = 28.0  # per-pixel Gaussian noise, in uint8 units
PAIR_COLOUR_DISTANCE = 45.0  # how far (RGB, uint8 units) a look-alike's shape colour lies


def _shape_mask(kind: str, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = y - cy, x - cx
    inside_box = (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
    if kind == "disc":
        return dy**2 + dx**2 <= radius**2
    if kind == "square":
        return (np.abs(dy) <= radius * 0.8) & (np.abs(dx) <= radius * 0.8)
    if kind == "ring":
        r = np.sqrt(dy**2 + dx**2)
        return (r <= radius) & (r >= radius * 0.55)
    if kind == "cross":
        return ((np.abs(dy) <= radius * 0.3) | (np.abs(dx) <= radius * 0.3)) & inside_box
    if kind == "triangle":
        return (dy <= radius * 0.7) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if kind == "hstripes":
        return inside_box & ((y // 3) % 2 == 0)
    if kind == "vstripes":
        return inside_box & ((x // 3) % 2 == 0)
    return (np.abs(dy - dx) <= radius * 0.35) & inside_box


def _upsample_matrix(size: int, cells: int = 3) -> np.ndarray:
    """(size, cells) bilinear weights: field = A @ cells_grid @ A.T, a smooth colour field."""
    centres = (np.arange(size) + 0.5) * cells / size - 0.5
    low = np.clip(np.floor(centres).astype(int), 0, cells - 2)
    frac = np.clip(centres - low, 0.0, 1.0)
    matrix = np.zeros((size, cells), dtype=np.float32)
    matrix[np.arange(size), low] = 1 - frac
    matrix[np.arange(size), low + 1] += frac
    return matrix


def _smooth_fields(grids: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, 3, 3) colour grids as (n, size, size, 3) smooth fields."""
    a = _upsample_matrix(size, grids.shape[1])
    per_channel = grids.astype(np.float32).transpose(0, 3, 1, 2)  # n, 3, cells, cells
    return (a @ per_channel @ a.T).transpose(0, 2, 3, 1)


@dataclass
class ClassLook:
    """What makes a class: its colour field, its shape (a mask at its place) and the shape's colour."""

    field: np.ndarray  # (3, 3, 3) colour grid of the class's share of the background
    mask: np.ndarray  # (size, size) bool
    colour: np.ndarray  # (3,) float


def class_looks(classes: int, similar_pairs: int, size: int, rng: np.random.Generator) -> list[ClassLook]:
    """One look a class; class 2k + 1 (k < similar_pairs) copies class 2k with the colour nudged."""
    looks: list[ClassLook] = []
    margin = size * 0.3
    for c in range(classes):
        if c % 2 == 1 and c // 2 < similar_pairs:
            twin = looks[c - 1]
            nudge = rng.normal(size=3)
            nudge *= PAIR_COLOUR_DISTANCE / np.linalg.norm(nudge)
            looks.append(ClassLook(twin.field, twin.mask, np.clip(twin.colour + nudge, 0, 255)))
            continue
        kind = SHAPES[rng.integers(len(SHAPES))]
        mask = _shape_mask(kind, size, rng.uniform(margin, size - margin), rng.uniform(margin, size - margin),
                           rng.uniform(size * 0.18, size * 0.3))
        looks.append(ClassLook(rng.uniform(20, 235, (3, 3, 3)), mask, rng.uniform(0, 255, 3)))
    return looks


def _images_of(look: ClassLook, n: int, rng: np.random.Generator, noise_pool: np.ndarray) -> np.ndarray:
    """``n`` images of one class: its shape, moved and recoloured a little, on a partly random
    field, re-lit, half of them partly occluded, all noised."""
    size = look.mask.shape[0]
    # Mixing the 3x3 grids before upsampling equals mixing the fields (it is linear), for less work.
    grids = FIELD_WEIGHT * look.field + (1 - FIELD_WEIGHT) * rng.uniform(0, 255, (n, 3, 3, 3))
    background = _smooth_fields(grids, size)
    padded = np.pad(look.mask, SHIFT)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    dy, dx = rng.integers(0, 2 * SHIFT + 1, (2, n))
    masks = windows[dy, dx][..., None]  # n, size, size, 1
    colours = (look.colour + rng.normal(0, COLOUR_JITTER, (n, 3))).astype(np.float32)[:, None, None, :]
    images = np.where(masks, colours, background)
    # Re-light: contrast about each image's mean, and a colour cast; +0.5 rounds at the cast to uint8.
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
    offset = mean * (1 - contrast) + rng.normal(0, 15, (n, 1, 1, 3)).astype(np.float32) + 0.5
    images *= contrast
    images += offset
    # A random patch hides part of half the images, so no single pixel gives the class away.
    patch = size // 4
    occluded = np.flatnonzero(rng.random(n) < 0.5)
    py, px = rng.integers(0, size - patch, (2, len(occluded)))
    patch_colours = rng.uniform(0, 255, (len(occluded), 3)).astype(np.float32)
    for i, y, x, colour in zip(occluded, py, px, patch_colours):
        images[i, y : y + patch, x : x + patch] = colour
    # Noise is cut from a shared pool at random offsets: a fresh Gaussian draw for all
    # 35,384 images was most of the generation time, and the overlap is invisible to a model.
    pixels = images[0].size
    offsets = rng.integers(0, len(noise_pool) - pixels, n)
    images += np.lib.stride_tricks.sliding_window_view(noise_pool, pixels)[offsets].reshape(images.shape)
    np.clip(images, 0, 255, out=images)
    return images.astype(np.uint8)


def flip_labels(labels: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Give a ``rate`` share of images another image's label; return (noisy labels, flipped indices).

    The chosen images pass their labels round a random cycle, so every class keeps its
    size (the seed's 146..526 stays exact); an image that receives its own class is not
    counted as flipped.
    """
    chosen = rng.permutation(len(labels))[: int(round(rate * len(labels)))]
    noisy = labels.copy()
    if len(chosen) > 1:
        noisy[chosen] = labels[np.roll(chosen, 1)]
    flipped = np.sort(chosen[noisy[chosen] != labels[chosen]])
    return noisy, flipped


def load_synthetic(
    seed: int = 0,
    image_size: int = 32,
    classes: int = SEED_CLASSES,
    images: int = SEED_IMAGES,
    smallest: int = SEED_SMALLEST,
    largest: int = SEED_LARGEST,
    similar_pairs: int = 12,
    noise_rate: float = 0.0,
) -> SourceResult:
    """The generated set; ``label_noise`` records every flipped image (id, given and true label)."""
    if not 0.0 <= noise_rate < 1.0:
        raise ConfigError(f"Parameter 'data.synthetic.noise_rate' must be in [0, 1), got {noise_rate}.")
    counts = seed_like_counts(seed, classes, images, smallest, largest, section="data.synthetic")
    if not 0 <= similar_pairs <= classes // 2:
        raise ConfigError(
            f"Parameter 'data.synthetic.similar_pairs' must be between 0 and {classes // 2} "
            f"(half of data.synthetic.classes), got {similar_pairs}."
        )
    if image_size < 8:
        raise ConfigError(f"Parameter 'data.image_size' must be at least 8 for synthetic images, got {image_size}.")
    rng = np.random.default_rng(seed)
    looks = class_looks(classes, similar_pairs, image_size, rng)
    noise_pool = rng.standard_normal(1 << 20, dtype=np.float32) * NOISE_STD
    pixels = np.concatenate([_images_of(looks[c], int(n), rng, noise_pool) for c, n in enumerate(counts)])
    true_labels = np.repeat(np.arange(classes), counts)
    order = rng.permutation(len(true_labels))  # classes interleaved, as a real folder would be read
    pixels, true_labels = pixels[order], true_labels[order]
    labels, flipped = flip_labels(true_labels, noise_rate, rng)

    width = len(str(classes - 1))
    class_names = [f"class_{c:0{width}d}" for c in range(classes)]
    ids = [f"synthetic/{i:05d}" for i in range(len(labels))]
    label_noise = [
        {"id": ids[i], "label": int(labels[i]), "true_label": int(true_labels[i]),
         "class_name": class_names[labels[i]], "true_class_name": class_names[true_labels[i]]}
        for i in flipped
    ]
    data = LabelledImages(images=pixels, labels=labels, class_names=class_names, ids=ids)
    summary = {"generated": len(labels), "classes": classes, "similar_pairs": similar_pairs,
               "labels_flipped": len(flipped)}
    return SourceResult(data=data, summary=summary, label_noise=label_noise)
