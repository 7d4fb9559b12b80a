"""A Kedro session of a project copy, run in this process, with MLflow's global state put back after."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def mlflow_state_restored() -> Iterator[None]:
    """kedro-mlflow points MLflow's globals (tracking URI, experiment, env vars) at the project it runs;
    put them back so that later tests write nowhere near it."""
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri, fluent._active_experiment_id)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
                                          "MLFLOW_EXPERIMENT_NAME")}
    try:
        yield
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

        # kedro-mlflow's hook is one object per process and keeps the last run's id: a later session whose
        # pipeline is not tracked would reopen that run, in a store where it does not exist.
        mlflow_hook.run_id = None
        tracking_utils._tracking_uri, registry_utils._registry_uri, fluent._active_experiment_id = saved
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_session(project: Path, *, env: str | None = None, runtime_params: dict[str, Any] | None = None,
                pipeline: str = "train", load: tuple[str, ...] = ()) -> dict[str, Any]:
    """``kedro run --env <env> --pipelines=<pipeline> --params ...`` in this process; the datasets in ``load``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    cwd = Path.cwd()
    with mlflow_state_restored():
        os.chdir(project)
        try:
            bootstrap_project(project)
            with KedroSession.create(project_path=project, env=env, runtime_params=runtime_params) as session:
                session.run(pipeline_names=[pipeline])
                catalog = session.load_context().catalog
                return {name: catalog.load(name) for name in load}
        finally:
            os.chdir(cwd)
            from kedro.framework.project import configure_project

            configure_project("classwise")  # back to the package the tests import
