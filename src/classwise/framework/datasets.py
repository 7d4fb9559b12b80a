"""Kedro datasets kedro-datasets has no fit for: image arrays (NPZ) and model weights."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from kedro.io import AbstractDataset, DatasetError

from classwise.core.atomic import atomic_write
from classwise.data.sources.base import LabelledImages

DATASET_KEYS = ("images", "labels", "class_names", "ids")


class LabelledImagesDataset(AbstractDataset[LabelledImages, LabelledImages]):
    """All images of a dataset as one uncompressed ``.npz``: images, labels, ids, class_names.

    Uncompressed, because 35,000 32x32 images are ~100 MB and load in well under a second.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> LabelledImages:
        fix = "rerun 'kedro run --pipelines=data' to write it again"
        try:
            with np.load(self._filepath, allow_pickle=False) as npz:
                missing = [key for key in DATASET_KEYS if key not in npz.files]
                if missing:
                    raise DatasetError(
                        f"'{self._filepath}' is not a Classwise dataset (it lacks {', '.join(missing)}); {fix}."
                    )
                return LabelledImages(
                    images=npz["images"],
                    labels=npz["labels"],
                    class_names=npz["class_names"].tolist(),
                    ids=npz["ids"].tolist(),
                )
        except (FileNotFoundError, DatasetError):
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            # numpy answers random bytes with a sentence about pickles; the cause stays chained.
            raise DatasetError(
                f"Cannot read the dataset file '{self._filepath}' ({type(exc).__name__}: it is damaged "
                f"or not an .npz written by Classwise); {fix}."
            ) from exc

    def save(self, data: LabelledImages) -> None:
        # A unique temporary name and one rename: a killed or concurrent run never leaves half a file.
        with atomic_write(self._filepath) as f:
            np.savez(
                f,
                images=data.images,
                labels=data.labels,
                class_names=np.asarray(data.class_names, dtype=str),
                ids=np.asarray(data.ids, dtype=str),
            )

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
        if not data.get("state_dict"):
            # Never replace a good model with one that holds no weights (a run that trained nothing).
            raise DatasetError(
                f"Refusing to overwrite '{self._filepath}' with a model that holds no weights; "
                f"check train.epochs and train.batch_size and rerun training."
            )
        with atomic_write(self._filepath) as f:
            torch.save({"config": data["config"], "state_dict": data["state_dict"]}, f)

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
