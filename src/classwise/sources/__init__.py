"""Data sources: each turns its input into a SourceResult of uint8 32x32 RGB images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import ConfigError
from .base import LabelledImages, SourceResult
from .digits import load_digits_source


@dataclass
class DigitsOptions:
    min_fraction: float = 0.28  # smallest class keeps this share of its images (seed: 146/526)
    noise: float = 0.12  # pixel noise std with a small random rotation/scale/shift; 0 = clean digits


@dataclass
class DataConfig:
    source: str = "digits"  # one of available_sources()
    root: str | None = None  # folder or archive location, for sources that read files
    image_size: int = 32  # images are resized to image_size x image_size
    seed: int = 0  # seeds any random choice a source makes
    digits: DigitsOptions = field(default_factory=DigitsOptions)


def _digits(cfg: DataConfig) -> SourceResult:
    return load_digits_source(cfg.image_size, cfg.digits.min_fraction, cfg.digits.noise, cfg.seed)


_SOURCES: dict[str, Callable[[DataConfig], SourceResult]] = {
    "digits": _digits,
}


def available_sources() -> list[str]:
    return sorted(_SOURCES)


def load_source(cfg: DataConfig) -> SourceResult:
    """Load the source named by ``cfg.source``."""
    if cfg.source not in _SOURCES:
        raise ConfigError(
            f"Unknown data source '{cfg.source}' in parameter 'data.source'; "
            f"choose one of: {', '.join(available_sources())}."
        )
    return _SOURCES[cfg.source](cfg)


__all__ = ["DataConfig", "LabelledImages", "SourceResult", "available_sources", "load_source"]
