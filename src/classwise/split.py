"""Stratified per-class hold-out: a fixed number (or share) of each class to val and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ConfigError
from .sources.base import LabelledImages

SUBSETS = ("train", "val", "test")


@dataclass
class SplitConfig:
    val_per_class: int = 10  # images of each class held out for validation (the seed: 10)
    test_per_class: int = 10  # images of each class held out for test (the seed: 10)
    seed: int = 0  # same seed, same data -> same split


def check_class_sizes(counts: np.ndarray, class_names: list[str], cfg: SplitConfig) -> None:
    """Refuse a class too small to give val and test their share and still train on one image."""
    need = cfg.val_per_class + cfg.test_per_class + 1
    small = [f"'{name}' has {count}" for name, count in zip(class_names, counts) if count < need]
    if small:
        raise ConfigError(
            f"Class {'; class '.join(small)} images, fewer than the {need} that "
            f"split.val_per_class={cfg.val_per_class} + split.test_per_class="
            f"{cfg.test_per_class} + 1 training image need; add images, remove the "
            f"class folder, or lower those parameters."
        )


def stratified_subsets(labels: np.ndarray, num_classes: int, cfg: SplitConfig) -> np.ndarray:
    """For each image, its subset ('train', 'val' or 'test'), chosen per class at random."""
    rng = np.random.default_rng(cfg.seed)
    subset = np.full(len(labels), "train", dtype=object)
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        subset[members[: cfg.val_per_class]] = "val"
        subset[members[cfg.val_per_class : cfg.val_per_class + cfg.test_per_class]] = "test"
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


def subset_index(data: LabelledImages, split: pd.DataFrame, subset: str) -> np.ndarray:
    """Row indices into ``data`` of the images the split puts in ``subset``."""
    ids = split.loc[split["subset"] == subset, "id"]
    index = pd.Index(data.ids).get_indexer(ids)
    if (index < 0).any():
        missing = ids[index < 0].iloc[0]
        raise ValueError(
            f"The split names image '{missing}', which the dataset does not hold; "
            f"rerun the data pipeline (kedro run --pipelines=data) so the two match."
        )
    return index
