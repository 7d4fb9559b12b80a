"""Kedro datasets kedro-datasets has no fit for: image arrays (NPZ) and model weights."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from kedro.io import AbstractDataset, DatasetError

from .sources.base import LabelledImages


class LabelledImagesDataset(AbstractDataset[LabelledImages, LabelledImages]):
    """All images of a dataset as one uncompressed ``.npz``: images, labels, ids, class_names.

    Uncompressed, because 35,000 32x32 images are ~100 MB and load in well under a second.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> LabelledImages:
        with np.load(self._filepath, allow_pickle=False) as npz:
            return LabelledImages(
                images=npz["images"],
                labels=npz["labels"],
                class_names=npz["class_names"].tolist(),
                ids=npz["ids"].tolist(),
            )

    def save(self, data: LabelledImages) -> None:
        Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{self._filepath}.tmp.npz")
        np.savez(
            tmp,
            images=data.images,
            labels=data.labels,
            class_names=np.asarray(data.class_names, dtype=str),
            ids=np.asarray(data.ids, dtype=str),
        )
        tmp.replace(self._filepath)  # atomic: a killed run never leaves half a file

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class TorchModelDataset(AbstractDataset[dict, dict]):
    """A model as ``{"config": {...}, "state_dict": {...}}`` in one ``.pt`` file.

    Weights and the config to rebuild the network, never a pickled module; loaded
    with ``weights_only=True`` so a file cannot run code, and a bad file fails clearly.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict:
        try:
            blob = torch.load(self._filepath, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            # One sentence; torch's own multi-line text stays on the chained exception.
            raise DatasetError(
                f"Cannot load model weights from '{self._filepath}' ({type(exc).__name__}: it is damaged "
                f"or not a weights-only model file); retrain with 'kedro run --pipelines=train' to write "
                f"a fresh file."
            ) from exc
        if not isinstance(blob, dict) or not {"config", "state_dict"} <= set(blob):
            raise DatasetError(
                f"'{self._filepath}' is not a Classwise model file (it needs 'config' and "
                f"'state_dict'); retrain with 'kedro run --pipelines=train'."
            )
        return blob

    def save(self, data: dict) -> None:
        Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{self._filepath}.tmp")
        torch.save({"config": data["config"], "state_dict": data["state_dict"]}, tmp)
        tmp.replace(self._filepath)

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
