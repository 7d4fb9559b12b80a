"""A trained network with what it needs to classify raw images: class names, normalisation, input size.

The predict pipeline and the served MLflow Model both classify through a Predictor and
decode through the image_folder source's code, so the same image gets the same classes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from classwise.core.errors import ConfigError, ModelError
from classwise.data.sources.image_folder import decode_files, walk_image_files
from classwise.core.device import predict_proba
from classwise.models.loading import load_network

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["file", "reason"]


def network_from_model(model: dict | nn.Module) -> nn.Module:
    """The saved model (weights + the config to rebuild the network) as a network in eval mode.

    The one place that turns a model file's content into a module; a ready module passes through.
    Keys the config may carry besides name, num_classes and options (lineage, best epoch) are ignored.
    """
    if isinstance(model, nn.Module):
        return model.eval()
    return load_network(model).eval()


@dataclass
class Predictor:
    network: nn.Module
    class_names: list[str]
    mean: list[float]  # per-channel normalisation of the training images
    std: list[float]
    image_size: int = 32  # every image is resized to image_size x image_size, as in training
    background: tuple[int, int, int] = (255, 255, 255)  # RGB under transparent pixels, as in training
    device: str = "auto"
    batch_size: int = 256

    def probabilities(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        """Softmax probabilities (N, classes) of uint8 (N, H, W, 3) images, batched."""
        out = np.empty((len(images), len(self.class_names)), dtype=np.float32)
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc="Predicting", unit="batch", disable=not progress or len(starts) < 2):
            chunk = images[start : start + self.batch_size]
            out[start : start + len(chunk)] = predict_proba(
                self.network, chunk, self.mean, self.std, device=self.device, batch_size=self.batch_size
            )
        return out

    def meta(self) -> dict[str, Any]:
        """Everything but the weights, as JSON-able values."""
        return {"class_names": list(self.class_names), "mean": list(self.mean), "std": list(self.std),
                "image_size": self.image_size, "background": list(self.background)}


def predictor_from_model(
    model: dict | nn.Module,
    normalization_stats: dict,
    image_size: int = 32,
    background: Sequence[int] = (255, 255, 255),
    device: str = "auto",
    batch_size: int = 256,
    class_names: Sequence[str] | None = None,
) -> Predictor:
    """A Predictor from the saved model and the normalisation statistics of its training images."""
    if class_names is None:
        class_names = model["config"].get("class_names") if isinstance(model, dict) else None
    if not class_names:
        raise ConfigError(
            "The saved model carries no class names; retrain with 'kedro run --pipelines=train' to write a "
            "model file that has them."
        )
    return Predictor(
        network=network_from_model(model), class_names=[str(c) for c in class_names],
        mean=[float(v) for v in normalization_stats["mean"]], std=[float(v) for v in normalization_stats["std"]],
        image_size=int(image_size), background=tuple(int(v) for v in background), device=device,
        batch_size=batch_size,
    )


def predictor_from_saved_model(
    model: dict,
    background: Sequence[int] = (255, 255, 255),
    device: str = "auto",
    batch_size: int = 256,
    source: str = "The model in data/06_models/model.pt",
) -> Predictor:
    """A Predictor from the saved model alone: its input size and normalisation come from its config
    (the train node writes them), never from today's parameters, which may have changed since.

    ``source`` names the model in the ModelError raised when its config lacks them.
    """
    config = model["config"]
    size, stats = config.get("image_size"), config.get("normalization")
    if not isinstance(size, int) or not isinstance(stats, dict) or not {"mean", "std"} <= set(stats):
        raise ModelError(
            f"{source} does not record the image size and normalisation it was trained with (it was saved by "
            f"an older version); retrain with 'kedro run --pipelines=train' to write a model file that has them."
        )
    return predictor_from_model(model, stats, size, background, device, batch_size)


def top_k_table(files: Sequence[str], probabilities: np.ndarray, class_names: Sequence[str], k: int) -> pd.DataFrame:
    """One row a file: file, class_1, probability_1, ..., class_k, probability_k (most probable first)."""
    k = min(k, len(class_names))
    probabilities = np.asarray(probabilities, dtype=np.float32).reshape(len(files), len(class_names))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    names = np.asarray(class_names, dtype=object)
    table: dict[str, Any] = {"file": list(files)}
    for rank in range(k):
        table[f"class_{rank + 1}"] = names[order[:, rank]]
        table[f"probability_{rank + 1}"] = np.take_along_axis(probabilities, order[:, rank : rank + 1], 1)[:, 0]
    return pd.DataFrame(table)


def input_image_files(path: str | os.PathLike) -> tuple[Path, list[str], list[dict[str, str]]]:
    """(the folder names are relative to, image files to predict, files skipped with a reason).

    ``path`` is one image file (decoded whatever its extension) or a folder, searched at any depth.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"'{path}' (parameter 'predict.input') does not exist; point predict.input at an image file "
            f"or a folder of images."
        )
    if path.is_file():
        return path.parent, [str(path)], []
    files, skipped, _ = walk_image_files(str(path))
    return path, files, [{"file": s["path"], "reason": s["reason"]} for s in skipped]


@dataclass
class NewPredictions:
    table: pd.DataFrame  # top_k_table of the images that could be read
    rejected: pd.DataFrame  # file, reason: every file under the input that was not predicted
    images: np.ndarray  # the decoded images, as the network saw them before normalisation
    probabilities: np.ndarray  # (N, classes), rows as in ``table``


def predict_path(predictor: Predictor, path: str | os.PathLike, top_k: int = 5, workers: int | None = None,
                 progress: bool = True) -> NewPredictions:
    """Classify every image under ``path`` (a file or a folder); list what could not be read and why."""
    root, files, skipped = input_image_files(path)
    images, positions, broken, _, _ = decode_files(
        files, predictor.image_size, predictor.background, workers=workers, progress=progress
    )
    probabilities = predictor.probabilities(images, progress=progress)

    def shown(file: str) -> str:
        return Path(file).relative_to(root).as_posix() if Path(file).is_relative_to(root) else file

    table = top_k_table([shown(files[i]) for i in positions], probabilities, predictor.class_names, top_k)
    rejected = pd.DataFrame(
        [{"file": shown(files[i]), "reason": broken[i]} for i in sorted(broken)]
        + [{"file": shown(s["file"]), "reason": s["reason"]} for s in skipped],
        columns=REJECT_COLUMNS,
    )
    if len(rejected):
        log.warning("%d of %d files under '%s' were not predicted; each is listed with its reason.",
                    len(rejected), len(files) + len(skipped), path)
    return NewPredictions(table=table, rejected=rejected, images=images, probabilities=probabilities)
