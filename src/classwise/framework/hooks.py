"""Kedro hooks: parameters checked before anything runs, readable MLflow runs, a closing summary.

- ``after_context_created`` parses every parameter block (classwise.framework.parameters), so a typo
  or a value out of range stops ``kedro run`` before the first node and before
  kedro-mlflow opens a run.
- ``before_pipeline_run`` names the MLflow run ``<pipeline>-<model>-<time>`` and replaces
  the tags that carry object reprs.
- ``after_pipeline_run`` writes the headline numbers into the run's description and
  ends the console on a short summary.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import click
from kedro.framework.hooks import hook_impl

from classwise.framework.parameters import check_parameters
from classwise.framework.run_summary import run_summary

log = logging.getLogger(__name__)


EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3 picks the UI (GenAI or model training) by this tag


def show_as_model_training(experiment_id: str) -> None:
    """Tag an experiment made before conf/base/mlflow.yml set its kind, so its runs open in the model-training view."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if EXPERIMENT_KIND not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, "custom_model_development")


class ClasswiseHooks:
    def __init__(self) -> None:
        self._params: dict[str, Any] = {}
        self._run_id: str | None = None
        self._tracking_uri: str | None = None
        self._summarise = True

    @hook_impl
    def after_context_created(self, context) -> None:
        params = context.config_loader["parameters"]
        check_parameters(params)  # raises ConfigError: the project CLI prints its one sentence
        self._params = params

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        import mlflow

        run = mlflow.active_run()
        self._run_id, self._summarise = None, True
        if run is None:
            return
        show_as_model_training(run.info.experiment_id)
        names = run_params.get("pipeline_names") or ["__default__"]
        default_name = "+".join(names)
        run = mlflow.get_run(run.info.run_id)
        if "ablation" in run.data.tags or run.info.run_name != default_name:
            # A run someone else opened and named (the ablation ladder's steps): leave it as it
            # is; the ladder prints its own table at the end.
            self._summarise = False
            return
        self._run_id = run.info.run_id
        self._tracking_uri = mlflow.get_tracking_uri()
        pipeline_label = "train" if default_name == "__default__" else default_name
        model = self._params.get("train", {}).get("model", "")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_name = "-".join(p for p in (pipeline_label, model if "train" in pipeline_label else "", stamp) if p)
        mlflow.set_tags({
            "mlflow.runName": run_name,
            "runner": type(run_params.get("runner")).__name__ if run_params.get("runner") else "SequentialRunner",
            "mlflow.note.content": f"`kedro run --pipelines={pipeline_label}` started {stamp}; running.",
        })

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result, pipeline, catalog) -> None:
        if not self._summarise:
            return
        summary = run_summary(catalog, pipeline, self._params, self._run_id, self._tracking_uri)
        if summary is None:
            return
        if self._run_id is not None:
            from mlflow.tracking import MlflowClient

            MlflowClient(self._tracking_uri).set_tag(self._run_id, "mlflow.note.content", summary.markdown)
        click.echo(summary.console)
