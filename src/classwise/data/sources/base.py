"""The one shape every data source returns: uint8 images, labels, names, ids, rejects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LabelledImages:
    """All images of a dataset, in memory.

    images: uint8 array (N, H, W, 3); labels: int64 (N,) indexing ``class_names``;
    ids: one stable, unique string a image (its source path or a generated id).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = [str(c) for c in self.class_names]
        self.ids = [str(i) for i in self.ids]
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got shape {self.images.shape}.")
        if len(self.labels) != n or len(self.ids) != n:
            raise ValueError(
                f"images, labels and ids must have the same length, got {n}, "
                f"{len(self.labels)} and {len(self.ids)}."
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Images per class, indexed by label."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, mask_or_index: np.ndarray) -> LabelledImages:
        """The images selected by a boolean mask or an index array."""
        index = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
        return LabelledImages(
            images=self.images[index],
            labels=self.labels[index],
            class_names=list(self.class_names),
            ids=[self.ids[i] for i in index],
        )


@dataclass
class SourceResult:
    """What a source yields: the images it could use, and every file it could not."""

    data: LabelledImages
    rejects: list[dict[str, str]] = field(default_factory=list)  # {"path", "action", "reason"}
    summary: dict[str, int] = field(default_factory=dict)  # counts worth logging
    # Images whose label was deliberately flipped: {"id", "label", "true_label", ...}.
    label_noise: list[dict[str, object]] = field(default_factory=list)
