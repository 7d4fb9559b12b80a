"""Data sources: each turns its input into a SourceResult of uint8 RGB images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from classwise.core.errors import ConfigError
from classwise.data.sources.base import LabelledImages, SourceResult
from classwise.data.sources.digits import load_digits_source
from classwise.data.sources.seed_shape import SEED_CLASSES, SEED_IMAGES, SEED_LARGEST, SEED_SMALLEST


@dataclass
class DigitsOptions:
    min_fraction: float = 0.28  # smallest class keeps this share of its images (seed: 146/526)
    noise: float = 0.12  # pixel noise std with a small random rotation/scale/shift; 0 = clean digits


@dataclass
class ImageFolderOptions:
    workers: int | None = None  # decoding processes; None = one a CPU core
    background: list[int] = field(default_factory=lambda: [255, 255, 255])  # RGB under transparent pixels
    progress: bool = True  # show a progress bar while decoding


@dataclass
class Cifar100Options:
    download: bool = False  # fetch the archive through torchvision when it is missing (needs a network)
    seed_like: bool = False  # cut to 91 classes of 146..526 images, 35,384 in all (seeded by data.seed)
    files: list[Literal["train", "test"]] = field(default_factory=lambda: ["train", "test"])  # archive parts read


@dataclass
class SyntheticOptions:
    classes: int = SEED_CLASSES  # number of classes (the seed: 91)
    images: int = SEED_IMAGES  # images in all (the seed: 35,384)
    smallest: int = SEED_SMALLEST  # images in the smallest class (the seed: 146)
    largest: int = SEED_LARGEST  # images in the largest class (the seed: 526)
    similar_pairs: int = 12  # classes (0,1), (2,3), ... made look-alikes, to be confused
    noise_rate: float = 0.0  # share of images given another class's label (recorded in label_noise)


@dataclass
class DataConfig:
    source: str = "digits"  # one of available_sources()
    root: str | None = None  # folder or archive location, for sources that read files
    image_size: int = 32  # images are resized to image_size x image_size
    seed: int = 0  # seeds any random choice a source makes
    label_fixes: str | None = None  # a CSV of id, action (drop | relabel), new_class, note, applied at ingest
    digits: DigitsOptions = field(default_factory=DigitsOptions)
    image_folder: ImageFolderOptions = field(default_factory=ImageFolderOptions)
    cifar100: Cifar100Options = field(default_factory=Cifar100Options)
    synthetic: SyntheticOptions = field(default_factory=SyntheticOptions)

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ConfigError(
                f"Unknown data source '{self.source}' in parameter 'data.source'; "
                f"choose one of: {', '.join(available_sources())}."
            )
        if self.image_size < 1:
            raise ConfigError(f"Parameter 'data.image_size' must be a positive number of pixels, got {self.image_size}.")
        background = self.image_folder.background
        if len(background) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in background):
            raise ConfigError(
                f"Parameter 'data.image_folder.background' must be three integers 0-255 (R, G, B), "
                f"got {background}."
            )


def _digits(cfg: DataConfig) -> SourceResult:
    return load_digits_source(cfg.image_size, cfg.digits.min_fraction, cfg.digits.noise, cfg.seed)


def _image_folder(cfg: DataConfig) -> SourceResult:
    from classwise.data.sources.image_folder import load_image_folder

    opts = cfg.image_folder
    return load_image_folder(cfg.root, cfg.image_size, tuple(opts.background), opts.workers, opts.progress)


def _cifar100(cfg: DataConfig) -> SourceResult:
    from classwise.data.sources.cifar100 import load_cifar100

    opts = cfg.cifar100
    return load_cifar100(cfg.root, opts.files, opts.download, opts.seed_like, cfg.seed, cfg.image_size)


def _synthetic(cfg: DataConfig) -> SourceResult:
    from classwise.data.sources.synthetic import load_synthetic

    opts = cfg.synthetic
    return load_synthetic(cfg.seed, cfg.image_size, opts.classes, opts.images, opts.smallest,
                          opts.largest, opts.similar_pairs, opts.noise_rate)


_SOURCES: dict[str, Callable[[DataConfig], SourceResult]] = {
    "digits": _digits,
    "image_folder": _image_folder,
    "cifar100": _cifar100,
    "synthetic": _synthetic,
}


def available_sources() -> list[str]:
    return sorted(_SOURCES)


def load_source(cfg: DataConfig) -> SourceResult:
    """Load the source named by ``cfg.source`` (DataConfig checked the name)."""
    return _SOURCES[cfg.source](cfg)


__all__ = [
    "Cifar100Options", "DataConfig", "DigitsOptions", "ImageFolderOptions", "LabelledImages",
    "SourceResult", "SyntheticOptions", "available_sources", "load_source",
]
