"""Paths in the configuration resolve against the project root, whatever the working directory.

Kedro already does this for the catalog; this hook does it for the SQLite
tracking URI and a new experiment's artifact folder (before kedro-mlflow reads
them) and for ``train.checkpoint_dir``
(as the node receives it), so ``cd src && kedro run`` writes into the project's
own ``mlflow.db`` and checkpoint folder instead of starting a second history.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from classwise.framework.store import check_sqlite_store, resolve_tracking_uri, sqlite_path

log = logging.getLogger(__name__)

# Set by the ablation ladder's Ray executor: every session of the process logs to this MLflow server.
TRACKING_URI_ENV = "CLASSWISE_MLFLOW_TRACKING_URI"

# Parameter blocks and their keys that name a folder relative to the project root.
PROJECT_RELATIVE = {"params:train": ("checkpoint_dir",)}


def resolve_params(params: dict[str, Any], keys: tuple[str, ...], project_path: Path) -> dict[str, Any] | None:
    """``params`` with each relative path at ``keys`` made absolute under ``project_path``; None if none was."""
    changed = {k: str(project_path / params[k]) for k in keys
               if isinstance(params.get(k), str) and not Path(params[k]).is_absolute()}
    return {**params, **changed} if changed else None


class ProjectPathsHook:
    """Makes the SQLite tracking URI and the checkpoint folder absolute under the project root."""

    def __init__(self) -> None:
        self.project_path: Path | None = None

    @hook_impl(tryfirst=True)  # before kedro-mlflow's own after_context_created reads mlflow.yml
    def after_context_created(self, context: Any) -> None:
        self.project_path = Path(context.project_path)
        loader = context.config_loader
        loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])
        try:
            conf = loader["mlflow"]
        except Exception:  # no mlflow.yml: kedro-mlflow's defaults apply, and it says so
            return
        server = conf.get("server") or {}
        if os.environ.get(TRACKING_URI_ENV):
            loader["mlflow"] = {**conf, "server": {**server, "mlflow_tracking_uri": os.environ[TRACKING_URI_ENV]}}
            return
        uri = server.get("mlflow_tracking_uri")
        if not isinstance(uri, str) or sqlite_path(uri) is None:
            return
        resolved = resolve_tracking_uri(uri, self.project_path)
        check_sqlite_store(resolved)
        conf = {**conf, "server": {**server, "mlflow_tracking_uri": resolved}}
        # MLflow puts a new experiment's artifacts under ./mlruns of the working directory;
        # under the project root instead, so that every run's files sit in one place.
        tracking = conf.get("tracking") or {}
        experiment = tracking.get("experiment") or {}
        create = experiment.get("create_experiment_kwargs") or {}
        if create.get("artifact_location") is None:
            location = (self.project_path / "mlruns" / str(experiment.get("name") or "Default")).as_posix()
            create = {**create, "artifact_location": location}
            conf["tracking"] = {**tracking, "experiment": {**experiment, "create_experiment_kwargs": create}}
        loader["mlflow"] = conf

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool,
                        run_id: str) -> dict[str, Any] | None:
        if self.project_path is None:
            return None
        updated = {}
        for name, keys in PROJECT_RELATIVE.items():
            if isinstance(inputs.get(name), dict):
                resolved = resolve_params(inputs[name], keys, self.project_path)
                if resolved is not None:
                    updated[name] = resolved
        return updated or None
