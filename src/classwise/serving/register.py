"""Log the trained model as an MLflow Model in the active run and register it.

Cheap on purpose, since every training run ends here: the pip requirements are given
(no dependency inference), and the package's own code travels with the model
(``code_paths``) so that a registered version keeps working whatever the code becomes.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from PIL import Image

from classwise.serving.predictor import Predictor
from classwise.training.lineage import model_fingerprint
from classwise.serving.pyfunc import IMAGE_COLUMN, SIGNATURE

log = logging.getLogger(__name__)

MODEL_NAME = "classifier"  # the logged model's name within its run
REQUIREMENTS = ["mlflow", "torch", "torchvision", "numpy", "pandas", "pillow", "tqdm"]  # what the pyfunc imports
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/classwise
MODEL_CODE = Path(__file__).with_name("model_code.py")  # builds the pyfunc at load time


def pip_requirements() -> list[str]:
    """The pyfunc's imports, pinned to the versions installed here."""
    pinned = []
    for name in REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 H x W x 3 array as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def registered_version(name: str, fingerprint: str) -> str | None:
    """The version of registered model ``name`` that holds a model with this fingerprint, if any."""
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except mlflow.exceptions.MlflowException:  # no such registered model yet
        return None
    same = [v.version for v in versions if v.tags.get("model_fingerprint") == fingerprint]
    return str(max(same, key=int)) if same else None


def log_classwise_model(
    model: dict,
    predictor: Predictor,
    example_image: np.ndarray,
    registered_model_name: str | None = None,
    version_tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Log the pyfunc in the active MLflow run, register it when a name is given, tag the version.

    ``model`` is the saved model (config + state_dict); ``predictor`` carries class names,
    normalisation and input size; ``example_image`` (uint8 H x W x 3) becomes the input example.
    Returns what a user needs to find the model again (URI, version, run, seconds taken).
    """
    started = time.perf_counter()
    fingerprint = model_fingerprint(model)
    config = model["config"]
    same = registered_version(registered_model_name, fingerprint) if registered_model_name else None
    if same is not None:
        log.info("The model is unchanged (fingerprint %s): models:/%s/%s already holds it, so no new version is "
                 "registered; this run logs its own copy.", fingerprint, registered_model_name, same)
    with tempfile.TemporaryDirectory() as tmp:
        weights, meta = Path(tmp, "model.pt"), Path(tmp, "meta.json")
        torch.save({"config": model["config"], "state_dict": model["state_dict"]}, weights)
        meta.write_text(json.dumps(predictor.meta(), indent=2), encoding="utf-8")
        example = base64.b64encode(png_bytes(example_image)).decode("ascii")  # base64 text, as the signature takes it
        # MLflow prints its own progress bars and "Registered model ..." lines to stderr; our one log
        # line below says the same, so its chatter goes to the debug log instead of the console.
        with contextlib.redirect_stderr(io.StringIO()) as chatter:
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=str(MODEL_CODE),
                artifacts={"weights": str(weights), "meta": str(meta)},
                code_paths=[str(PACKAGE_DIR)],
                signature=SIGNATURE,
                input_example=pd.DataFrame({IMAGE_COLUMN: [example]}),
                pip_requirements=pip_requirements(),
                registered_model_name=registered_model_name if same is None else None,
            )
        if chatter.getvalue().strip():
            log.debug("MLflow, while logging the model: %s", chatter.getvalue().strip())
    version_number = info.registered_model_version if same is None else same
    if registered_model_name and version_number is not None and same is None:
        lineage_tags = {"model_fingerprint": fingerprint, "network": config.get("name"),
                        "trained_at": config.get("trained_at"),
                        "dataset_fingerprint": config.get("dataset_fingerprint"),
                        "split_fingerprint": config.get("split_fingerprint")}
        client = mlflow.MlflowClient()
        for key, value in {**(version_tags or {}), **lineage_tags}.items():
            if value is not None:
                client.set_model_version_tag(registered_model_name, str(version_number), key, str(value))
    seconds = time.perf_counter() - started
    registered_uri = f"models:/{registered_model_name}/{version_number}" if version_number is not None else None
    where = "" if registered_uri is None else (f", registered as {registered_uri}" if same is None
                                               else f", the same weights as {registered_uri}")
    log.info("Logged the MLflow Model %s in %.1f s%s.", info.model_uri, seconds, where)
    return {
        "model_uri": info.model_uri,
        "registered_model_uri": registered_uri,
        "registered_model_name": registered_model_name if version_number is not None else None,
        "version": int(version_number) if version_number is not None else None,
        "run_id": info.run_id,
        "model_fingerprint": fingerprint,
        "newly_registered": same is None and version_number is not None,
        "seconds": round(seconds, 2),
    }
