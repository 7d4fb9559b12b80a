"""A logged Classwise model read as data, never run: its MLmodel checked as YAML, its weights loaded
with ``torch.load(weights_only=True)``, its class names and input from ``meta.json``.

``mlflow.pyfunc.load_model`` imports and runs whatever a model directory holds (a pickled
PythonModel, a model_code.py, its code folder), so predict.model_uri and the Classwise server
come through here instead, and build the network with this installed package's code.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import torch
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.store.artifact.utils.models import get_model_name_and_version

from classwise.core.errors import ClasswiseError, ModelError
from classwise.serving.predictor import Predictor, predictor_from_model

CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"  # MLflow's loader of a models-from-code pyfunc
# The files register.py logs beside the code; nothing else in the directory is read.
ARTIFACTS = {"weights": "artifacts/model.pt", "meta": "artifacts/meta.json"}
META_KEYS = ("class_names", "mean", "std", "image_size", "background")
PREDICT_FIX = ("point predict.model_uri at a version registered by 'kedro run --pipelines=train' (make mlflow-ui "
               "lists them), or set it to null to use data/06_models/model.pt")


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0].rstrip(".")


def model_location(model_uri: str) -> str:
    """Where ``model_uri``'s files are, resolved through the registry (MlflowClient) without loading
    it: ``models:/name/version``, ``/latest``, ``/<stage>``, ``@alias`` and ``models:/m-<id>``; a
    ``runs:/``, ``file:`` or plain path as it is."""
    if not model_uri.startswith("models:/"):
        return model_uri
    client = mlflow.MlflowClient()
    resolved = get_model_name_and_version(client, model_uri)  # MLflow's own parsing of models:/ URIs
    if len(resolved) == 1:  # a logged model's id, never registered
        return client.get_logged_model(resolved[0]).artifact_location
    return client.get_model_version_download_uri(*resolved)


def _fetch(location: str, relative: str, into: Path) -> Path:
    """One file of the model: read in place when local, else downloaded alone (never the code folder)."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file") and not location.startswith(("runs:", "models:")):
        return Path(parsed.path if parsed.scheme == "file" else location) / relative
    target = into / Path(relative).parent
    target.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{location.rstrip('/')}/{relative}",
                                                    dst_path=str(target)))


def check_classwise_mlmodel(mlmodel: Any) -> None:
    """Refuse (ValueError, the reason) an MLmodel that is not a Classwise pyfunc as register.py logs it."""
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    pyfunc = flavors.get("python_function") if isinstance(flavors, dict) else None
    if not isinstance(pyfunc, dict):
        raise ValueError("it has no python_function flavor")
    if pyfunc.get("loader_module") != CODE_MODEL_LOADER or "python_model" in pyfunc:
        loader = pyfunc.get("python_model") or pyfunc.get("loader_module")
        raise ValueError(f"its pyfunc is loaded by '{loader}', not by Classwise's model code, and is not run")
    artifacts = pyfunc.get("artifacts") if isinstance(pyfunc.get("artifacts"), dict) else {}
    paths = {k: v.get("path") for k, v in artifacts.items() if isinstance(v, dict)}
    if paths != ARTIFACTS:
        raise ValueError(f"its artifacts are {sorted(paths) or 'none'}, not Classwise's weights and meta")


def _read_meta(path: Path) -> dict[str, Any]:
    meta = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(f"its meta.json lacks {', '.join(missing)}")
    return meta


def load_logged_predictor(model_uri: str, fix: str = PREDICT_FIX) -> tuple[Predictor, Model]:
    """The Predictor and MLflow metadata of a logged Classwise model, nothing of it run.

    ``model_uri``: ``models:/classwise/3``, ``models:/classwise/latest``, ``models:/classwise@champion``,
    ``runs:/<run id>/classifier`` or a model directory. ``fix`` ends the ModelError sentence raised for
    anything that cannot be read this way (not found, not a Classwise model, damaged weights).
    Example: ``predictor, _ = load_logged_predictor("models:/classwise/3")``.
    """
    def refuse(why: str) -> ModelError:
        return ModelError(f"Cannot use '{model_uri}' as a Classwise model: {why}; {fix}.")

    with tempfile.TemporaryDirectory(prefix="classwise-model-") as tmp:
        try:
            location = model_location(model_uri)
            mlmodel_path = _fetch(location, "MLmodel", Path(tmp))
            mlmodel = yaml.safe_load(mlmodel_path.read_text(encoding="utf-8"))  # YAML as data, no tags
        except (MlflowException, OSError, yaml.YAMLError, ValueError) as exc:
            raise refuse(f"it cannot be found or read ({_first_line(exc)})") from exc
        try:
            check_classwise_mlmodel(mlmodel)
            meta = _read_meta(_fetch(location, ARTIFACTS["meta"], Path(tmp)))
            weights = torch.load(_fetch(location, ARTIFACTS["weights"], Path(tmp)), map_location="cpu",
                                 weights_only=True)
            if not isinstance(weights, dict) or not {"config", "state_dict"} <= set(weights):
                raise ValueError("its weights file holds no config and state_dict")
            predictor = predictor_from_model(weights, meta, image_size=meta["image_size"],
                                             background=meta["background"], class_names=meta["class_names"])
            metadata = Model.from_dict(mlmodel)
        except ClasswiseError as exc:
            raise refuse(str(exc).rstrip(".")) from exc
        except Exception as exc:  # a damaged or foreign file in any of its parts: one sentence, the cause chained
            raise refuse(_first_line(exc)) from exc
    return predictor, metadata
