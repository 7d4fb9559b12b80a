"""One ladder step as a Kedro session inside its MLflow run: what every executor runs and records.

Shared by the local executor (steps one after another in this process) and the Ray executor
(each step a Ray task), so both run, tag and record a step the same way.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession

from classwise.ablation.ladder import AblationConfig, Step, nest
from classwise.ablation.summary import StepOutcome

log = logging.getLogger(__name__)

FINISHED, FAILED = "FINISHED", "FAILED"


class ResolvedParamsSession(KedroSession):
    """A KedroSession whose parameters are exactly ``resolved_params``.

    Kedro merges runtime parameters into the configured ones dict by dict, so a
    step that switches ``train.model`` would keep the old model's options next to
    its own; handing the session the parameters already resolved (replacing at
    each overridden key) avoids that. The runtime parameters still go to Kedro,
    which records them on the run.
    """

    resolved_params: dict[str, Any] | None = None
    context: KedroContext | None = None

    def _get_config_loader(self):
        # Set before the context exists, so that every hook (the parameter check among them)
        # and every node see the resolved parameters, never a deep merge of the runtime ones.
        loader = super()._get_config_loader()
        if self.resolved_params is not None:
            loader["parameters"] = self.resolved_params
        return loader

    def load_context(self) -> KedroContext:
        self.context = super().load_context()
        return self.context


def step_session(
    project_path: Path, env: str | None, params: dict[str, Any] | None, overrides: Mapping[str, Any]
) -> ResolvedParamsSession:
    session = ResolvedParamsSession.create(project_path=project_path, env=env, runtime_params=nest(overrides) or None)
    session.resolved_params = params
    return session


@contextlib.contextmanager
def quiet_reuse_warnings() -> Iterator[None]:
    """kedro-mlflow warns on every session that it reuses the active run; here that is the point."""
    hook_log = logging.getLogger("kedro_mlflow.framework.hooks.mlflow_hook")
    level = hook_log.level
    hook_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hook_log.setLevel(level)


def end_runs_above(run_id: str | None, status: str) -> None:
    """End the active runs stacked above ``run_id`` (all of them when it is None).

    kedro-mlflow re-enters the active run before every node (for threaded runners),
    which stacks the same run once a node; those entries go too, so that the next
    step nests under the parent and the summary lands on it.
    """
    while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
        mlflow.end_run(status)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def step_tags(step: Step, tags: dict[str, str]) -> dict[str, str]:
    return {**tags, "ablation.step": step.ladder_step, "ablation.role": "step", "mlflow.note.content": step.changes}


def execute_step(step: Step, params: dict[str, Any], overrides: Mapping[str, Any], cfg: AblationConfig,
                 project_path: Path, env: str | None, run_id: str) -> StepOutcome:
    """One step's Kedro session in ``project_path``, inside its active MLflow run ``run_id``."""
    metrics = f1_size = None
    status, error = FINISHED, ""
    start = time.perf_counter()
    session = None
    try:
        session = step_session(project_path, env, params, overrides)
        session.run(pipeline_names=[cfg.step_pipeline], from_nodes=cfg.step_from_nodes)
        catalog = session.context.catalog  # type: ignore[union-attr]
        metrics = catalog.load("metrics")
        f1_size = catalog.load("f1_size_correlation")
    except Exception as exc:  # a failing step must not stop the ladder
        status, error = FAILED, one_line(exc)
        log.exception("Ablation step '%s' FAILED: %s", step.name, error)
    finally:
        wall = time.perf_counter() - start
        if session is not None:
            session.close()
    return StepOutcome(step.name, step.changes, status, wall, run_id, metrics, f1_size, error)


def record_step(outcome: StepOutcome) -> StepOutcome:
    """Log a step's wall time, F1-vs-size numbers and status on its run, and end it with that status."""
    run_id, status, f1_size, error = outcome.run_id, outcome.status, outcome.f1_size, outcome.error
    # The client writes to the step's run by id, whichever run the fluent API has active.
    client = mlflow.MlflowClient()
    client.log_metric(run_id, "ablation.wall_seconds", round(outcome.wall_seconds, 1))
    if f1_size is not None:
        if f1_size.get("pearson_r") is not None:
            client.log_metric(run_id, "f1_size.pearson_r", float(f1_size["pearson_r"]))
        client.log_metric(run_id, "f1_size.classes_under_threshold", len(f1_size.get("classes_below_threshold", [])))
    client.set_tag(run_id, "ablation.status", status)
    if error:
        client.set_tag(run_id, "ablation.error", error[:5000])
    client.set_terminated(run_id, status)  # in case something ended it before with another status
    log.info("Ablation step '%s' %s in %.1f s.", outcome.step, status, outcome.wall_seconds)
    return outcome
