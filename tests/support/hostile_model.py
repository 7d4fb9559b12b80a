"""A pyfunc model from a stranger: unpickling it runs a shell command (here it only touches a marker file)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import mlflow


class HostileModel(mlflow.pyfunc.PythonModel):
    """Pickled by MLflow with the model; ``os.system`` runs when the pickle is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)

    def predict(self, context, model_input):
        return model_input


def save_hostile_model(folder: Path) -> tuple[Path, Path]:
    """A hostile model saved under ``folder`` (as passed with predict.model_uri=<path>), and its marker file.

    Its pip requirements are given: MLflow would infer them by loading the model, which runs it.
    """
    marker = folder / "hostile-model-ran"
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=HostileModel(marker), pip_requirements=["mlflow"])
    assert not marker.exists()
    return folder / "model", marker
