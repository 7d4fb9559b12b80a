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


class OptionalDataset(AbstractDataset[Any, None]):
    """Read-only: what the wrapped dataset holds, or None when it has not been written.

    For a page that shows a diagnosis when one exists: the evaluate pipeline reads the saved
    diagnosis through this, so it neither requires one nor runs the diagnose pipeline.
    """

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        from kedro.io.core import parse_dataset_definition

        dataset_class, kwargs = parse_dataset_definition(dict(dataset))
        self._dataset = dataset_class(**kwargs)
        self.metadata = metadata

    def load(self) -> Any:
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: None) -> None:
        raise DatasetError("An optional input is read-only; write the dataset it wraps instead.")

    def _exists(self) -> bool:
        return True  # absent is a valid state: load gives None

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}


class HtmlPageDataset(AbstractDataset[str, str]):
    """One self-contained HTML page (UTF-8), written in one rename."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> str:
        return Path(self._filepath).read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        with atomic_write(self._filepath) as f:
            f.write(data.encode("utf-8"))

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class MlflowMetricsDataset(AbstractDataset[dict, dict]):
    """Single values logged as ``<prefix><name>`` to the active MLflow run, in one batch a thousand.

    kedro-mlflow's metrics dataset always joins prefix and name with a dot and logs one call a
    value; MLflow's run page groups charts by the part of a name before the first slash and puts
    those groups in alphabetical order before the unprefixed ones, so the names here carry their
    section (``curves/`` first, then ``data/``, ``final/``, ``per_class/``, ...), and the 546
    per-class values of a 91-class run go in one request instead of 546. Values come as the
    nodes give them: ``{name: {"value": v, "step": s}}`` (framework.tracking.as_logged_metrics).
    Without an active run (tracking off for the pipeline) nothing is logged. Write-only.
    """

    def __init__(self, prefix: str = "", metadata: dict[str, Any] | None = None) -> None:
        self._prefix = prefix
        self.metadata = metadata

    def load(self) -> dict:
        raise DatasetError("MLflow metrics are write-only here; read them in the MLflow UI or with MlflowClient.")

    def save(self, data: dict) -> None:
        import time

        import mlflow
        from mlflow.entities import Metric

        run = mlflow.active_run()
        if run is None:
            return
        stamp = int(time.time() * 1000)
        metrics = [Metric(f"{self._prefix}{name}", float(v["value"]), stamp, int(v.get("step", 0)))
                   for name, v in data.items()]
        client = mlflow.MlflowClient()
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000])

    def _exists(self) -> bool:
        return False

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix}
