"""Stratified per-class hold-out: a fixed number or a share of each class to val and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from classwise.core.errors import ConfigError, DataError
from classwise.data.sources.base import LabelledImages

SUBSETS = ("train", "val", "test")


@dataclass
class SplitConfig:
    val_per_class: int = 10  # images of each class held out for validation (the seed: 10)
    test_per_class: int = 10  # images of each class held out for test (the seed: 10)
    val_fraction: float | None = None  # if set, a share of each class instead of val_per_class
    test_fraction: float | None = None  # if set, a share of each class instead of test_per_class
    seed: int = 0  # same seed, same data -> same split

    def __post_init__(self) -> None:
        for name in ("val_per_class", "test_per_class"):
            if getattr(self, name) < 0:
                raise ConfigError(f"Parameter 'split.{name}' must be 0 or more, got {getattr(self, name)}.")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ConfigError(f"Parameter 'split.{name}' must be between 0 and 1 (or null), got {value}.")
        if (self.val_fraction or 0.0) + (self.test_fraction or 0.0) >= 1.0:
            raise ConfigError(
                f"Parameters 'split.val_fraction' ({self.val_fraction}) and 'split.test_fraction' "
                f"({self.test_fraction}) leave nothing to train on; keep their sum below 1."
            )

    def holdout_rule(self, subset: str) -> str:
        fraction = getattr(self, f"{subset}_fraction")
        if fraction is None:
            return f"split.{subset}_per_class={getattr(self, f'{subset}_per_class')}"
        return f"split.{subset}_fraction={fraction} (at least 1 image)"


def holdout_counts(counts: np.ndarray, cfg: SplitConfig) -> tuple[np.ndarray, np.ndarray]:
    """Images of each class that go to val and to test.

    A fraction is rounded per class and never gives less than one image, so every
    class is measured on val and test however small it is.
    """
    counts = np.asarray(counts, dtype=np.int64)

    def per_class(fraction: float | None, fixed: int) -> np.ndarray:
        if fraction is None:
            return np.full(len(counts), fixed, dtype=np.int64)
        return np.maximum(1, np.round(counts * fraction)).astype(np.int64)

    return per_class(cfg.val_fraction, cfg.val_per_class), per_class(cfg.test_fraction, cfg.test_per_class)


def check_class_sizes(counts: np.ndarray, class_names: list[str], cfg: SplitConfig) -> None:
    """Refuse a class too small to give val and test their share and still train on one image."""
    val, test = holdout_counts(counts, cfg)
    need = val + test + 1
    small = [(name, int(count), int(n)) for name, count, n in zip(class_names, counts, need) if count < n]
    if not small:
        return
    if cfg.val_fraction is None and cfg.test_fraction is None:
        listed = "; class ".join(f"'{name}' has {count}" for name, count, _ in small)
        raise ConfigError(
            f"Class {listed} images, fewer than the {small[0][2]} that "
            f"split.val_per_class={cfg.val_per_class} + split.test_per_class="
            f"{cfg.test_per_class} + 1 training image need; add images, remove the "
            f"class folder, or lower those parameters."
        )
    listed = "; class ".join(f"'{name}' has {count} images, needs {n}" for name, count, n in small)
    raise ConfigError(
        f"Class {listed} for {cfg.holdout_rule('val')} + {cfg.holdout_rule('test')} + 1 training "
        f"image; add images, remove the class folder, or lower those parameters."
    )


def stratified_subsets(labels: np.ndarray, num_classes: int, cfg: SplitConfig) -> np.ndarray:
    """For each image, its subset ('train', 'val' or 'test'), chosen per class at random."""
    rng = np.random.default_rng(cfg.seed)
    val, test = holdout_counts(np.bincount(labels, minlength=num_classes), cfg)
    subset = np.full(len(labels), "train", dtype=object)
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        subset[members[: val[c]]] = "val"
        subset[members[val[c] : val[c] + test[c]]] = "test"
    return subset


def split_table(data: LabelledImages, cfg: SplitConfig) -> pd.DataFrame:
    """One row an image: id, label, class_name, subset."""
    check_class_sizes(data.class_counts(), data.class_names, cfg)
    subset = stratified_subsets(data.labels, data.num_classes, cfg)
    return pd.DataFrame(
        {
            "id": data.ids,
            "label": data.labels,
            "class_name": [data.class_names[i] for i in data.labels],
            "subset": pd.Categorical(subset, categories=list(SUBSETS)),
        }
    )


def dataset_rows(data: LabelledImages, ids: pd.Series, named_by: str, fix: str) -> np.ndarray:
    """Row indices into ``data`` of the images ``ids``; one sentence naming the first unknown id.

    ``named_by`` says what listed the ids and ``fix`` what command makes it match the dataset.
    """
    index = pd.Index(data.ids).get_indexer(ids)
    if (index < 0).any():
        missing = pd.Series(ids)[index < 0].iloc[0]
        raise DataError(
            f"{named_by} names image '{missing}', which the dataset does not hold; {fix} so the two match."
        )
    return index


def subset_index(data: LabelledImages, split: pd.DataFrame, subset: str) -> np.ndarray:
    """Row indices into ``data`` of the images the split puts in ``subset``."""
    ids = split.loc[split["subset"] == subset, "id"]
    return dataset_rows(data, ids, "The split", "rerun the data pipeline (kedro run --pipelines=data)")
