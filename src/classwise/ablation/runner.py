"""Run the ladder: the shared data stages once, then one Kedro session per step.

Each step is its own MLflow run, nested under one parent run for the whole
ladder and tagged ``ablation=<id>``, so the MLflow UI lists and compares them.
The parent run is opened here, and each child run too, before its Kedro session
starts: kedro-mlflow then logs the step's parameters, metrics and artifacts into
the run that is already active instead of opening its own, which is what lets
the runs carry step names and a shared parent.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from ..config import ConfigError
from ..parameters import check_parameters
from .ladder import AblationConfig, Step, apply_overrides, expand_steps, nest, parse_ablation
from .summary import StepOutcome, summary_markdown, summary_plot, summary_table

log = logging.getLogger(__name__)

FINISHED, FAILED = "FINISHED", "FAILED"


class _ResolvedParamsSession(KedroSession):
    """A KedroSession whose parameters are exactly ``resolved_params``.

    Kedro merges runtime parameters into the configured ones dict by dict, so a
    step that switches ``train.model`` would keep the old model's options next to
    its own; handing the session the parameters already resolved (replacing at
    each overridden key) avoids that. The runtime parameters still go to Kedro,
    which records them on the run.
    """

    resolved_params: dict[str, Any] | None = None
    context: KedroContext | None = None

    def load_context(self) -> KedroContext:
        context = super().load_context()
        if self.resolved_params is not None:
            context.config_loader["parameters"] = self.resolved_params
        self.context = context
        return context


def _session(
    project_path: Path, env: str | None, params: dict[str, Any] | None, overrides: Mapping[str, Any]
) -> _ResolvedParamsSession:
    session = _ResolvedParamsSession.create(project_path=project_path, env=env, runtime_params=nest(overrides) or None)
    session.resolved_params = params
    return session


@contextlib.contextmanager
def _quiet_reuse_warnings() -> Iterator[None]:
    """kedro-mlflow warns on every session that it reuses the active run; here that is the point."""
    hook_log = logging.getLogger("kedro_mlflow.framework.hooks.mlflow_hook")
    level = hook_log.level
    hook_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hook_log.setLevel(level)


def _end_runs_above(run_id: str | None, status: str) -> None:
    """End the active runs stacked above ``run_id`` (all of them when it is None).

    kedro-mlflow re-enters the active run before every node (for threaded runners),
    which stacks the same run once a node; those entries go too, so that the next
    step nests under the parent and the summary lands on it.
    """
    while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
        mlflow.end_run(status)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


@dataclass
class LadderResult:
    ablation_id: str
    parent_run_id: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    data_error: str = ""  # why the shared data stages failed (then no step ran)

    @property
    def ok(self) -> bool:
        return not self.data_error and all(o.status == FINISHED for o in self.outcomes)


def step_tags(step: Step, tags: dict[str, str]) -> dict[str, str]:
    return {**tags, "ablation.step": step.ladder_step, "ablation.role": "step", "mlflow.note.content": step.changes}


def _run_step(
    step: Step,
    params: dict[str, Any],
    overrides: Mapping[str, Any],
    cfg: AblationConfig,
    project_path: Path,
    env: str | None,
    tags: dict[str, str],
    parent_run_id: str,
) -> StepOutcome:
    run = mlflow.start_run(run_name=step.name, nested=True, tags=step_tags(step, tags))
    log.info("Ablation step '%s' (%s): %s", step.name, run.info.run_id, step.changes)
    outcome = execute_step(step, params, overrides, cfg, project_path, env, run.info.run_id)
    _end_runs_above(parent_run_id, outcome.status)
    return record_step(outcome)


def execute_step(step: Step, params: dict[str, Any], overrides: Mapping[str, Any], cfg: AblationConfig,
                 project_path: Path, env: str | None, run_id: str) -> StepOutcome:
    """One step's Kedro session in ``project_path``, inside its active MLflow run ``run_id``."""
    metrics = f1_size = None
    status, error = FINISHED, ""
    start = time.perf_counter()
    session = None
    try:
        session = _session(project_path, env, params, overrides)
        session.run(pipeline_names=[cfg.step_pipeline], from_nodes=cfg.step_from_nodes)
        catalog = session.context.catalog  # type: ignore[union-attr]
        metrics = catalog.load("metrics")
        f1_size = catalog.load("f1_size_correlation")
    except Exception as exc:  # a failing step must not stop the ladder
        status, error = FAILED, _one_line(exc)
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


def _load_project(project_path: Path, env: str | None) -> tuple[KedroContext, dict[str, Any], AblationConfig]:
    bootstrap_project(project_path)
    context = _session(project_path, env, None, {}).load_context()
    # kedro-mlflow has now pointed MLflow at the project's store (mlflow.yml).
    params = context.config_loader["parameters"]
    return context, params, parse_ablation(params.get("ablation"))


def plan_ladder(
    project_path: Path | str = ".", scale: str | None = None, env: str | None = None, only: Sequence[str] | None = None
) -> tuple[str, dict[str, Any], list[Step]]:
    """The scale, its own overrides and the runs ``run_ladder`` would make, without running anything."""
    _, _, cfg = _load_project(Path(project_path).resolve(), env)
    scale = scale or cfg.scale
    steps = expand_steps(cfg, scale, only)
    return scale, dict(cfg.scales[scale].overrides), steps


def run_ladder(
    project_path: Path | str = ".",
    scale: str | None = None,
    env: str | None = None,
    extra_overrides: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    ray: Any | None = None,
) -> LadderResult:
    """Run the ladder of ``scale`` (default: ``ablation.scale``) and write its summary.

    ``extra_overrides`` (dotted keys) apply to the data stage and to every step,
    after the scale's and the step's own. Raises ConfigError before any run when
    the ladder's configuration is wrong; a failing step is recorded, not raised.
    With ``ray`` (a ``ray_executor.RayOptions``) the steps run as Ray tasks, in
    parallel, and everything logs to an MLflow tracking server.
    """
    if ray is None:
        return _run_ladder(project_path, scale, env, extra_overrides, only)
    from .ray_executor import require_ray, tracking_server, tracking_uri_for_sessions

    require_ray()
    with tracking_server(Path(project_path).resolve(), ray.tracking_uri) as uri, tracking_uri_for_sessions(uri):
        return _run_ladder(project_path, scale, env, extra_overrides, only, ray)


def _run_ladder(
    project_path: Path | str = ".",
    scale: str | None = None,
    env: str | None = None,
    extra_overrides: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    ray: Any | None = None,
) -> LadderResult:
    if mlflow.active_run() is not None:
        raise RuntimeError(
            f"An MLflow run ({mlflow.active_run().info.run_id}) is already active; end it before running the ladder."
        )
    project_path = Path(project_path).resolve()
    extra = dict(extra_overrides or {})
    context, base_params, cfg = _load_project(project_path, env)
    scale = scale or cfg.scale
    steps = expand_steps(cfg, scale, only)
    scale_overrides = {**cfg.scales[scale].overrides, **extra}
    data_params = apply_overrides(base_params, scale_overrides)
    # Resolve every step before any run starts, so that a typo in the ladder costs no training.
    step_overrides = [{**step.overrides, **extra} for step in steps]
    step_params = [apply_overrides(base_params, o) for o in step_overrides]
    check_parameters(data_params)
    for step, params in zip(steps, step_params):
        try:
            check_parameters(params)
        except ConfigError as exc:
            raise ConfigError(f"Ablation step '{step.name}': {exc}") from exc

    experiment = mlflow.set_experiment(context.mlflow.tracking.experiment.name)
    ablation_id = f"{scale}-{datetime.now():%Y%m%d-%H%M%S}"
    tags = {"ablation": ablation_id, "ablation.scale": scale}
    parent = mlflow.start_run(
        experiment_id=experiment.experiment_id,
        run_name=f"ablation-{ablation_id}",
        tags={**tags, "ablation.role": "parent", "mlflow.note.content": cfg.scales[scale].description},
    )
    result = LadderResult(ablation_id, parent.info.run_id)
    log.info(
        "Ablation '%s': %d runs (%s) under MLflow run %s in experiment '%s'.",
        ablation_id, len(steps), ", ".join(s.name for s in steps), parent.info.run_id, experiment.name,
    )
    try:
        with _quiet_reuse_warnings():
            try:
                _session(project_path, env, data_params, scale_overrides).run(pipeline_names=[cfg.data_pipeline])
            except Exception as exc:
                result.data_error = _one_line(exc)
                log.exception("The shared data stages failed, so no step ran: %s", result.data_error)
                _end_runs_above(parent.info.run_id, FAILED)
                mlflow.set_tag("ablation.error", result.data_error[:5000])
                _end_runs_above(None, FAILED)
                return result
            _end_runs_above(parent.info.run_id, FINISHED)
            if ray is not None:
                from .ray_executor import run_steps_on_ray

                result.outcomes = run_steps_on_ray(ray, context, steps, step_params, step_overrides, cfg,
                                                   project_path, env, tags, parent.info.run_id, ablation_id)
            for step, params, overrides in zip(steps, step_params, step_overrides) if ray is None else ():
                outcome = _run_step(step, params, overrides, cfg, project_path, env, tags, parent.info.run_id)
                result.outcomes.append(outcome)
        result.summary = _write_summary(context, result)
    except BaseException as exc:
        _end_runs_above(None, "KILLED" if isinstance(exc, KeyboardInterrupt) else FAILED)
        raise
    failed = [o.step for o in result.outcomes if o.status != FINISHED]
    mlflow.set_tag("ablation.failed_steps", ", ".join(failed) or "none")
    mlflow.log_metrics({"ablation.steps_finished": len(steps) - len(failed), "ablation.steps_failed": len(failed)})
    _end_runs_above(None, FINISHED if result.ok else FAILED)
    if failed:
        log.error("Ablation '%s': %d of %d steps FAILED: %s.", ablation_id, len(failed), len(steps), ", ".join(failed))
    else:
        log.info("Ablation '%s': all %d steps finished.", ablation_id, len(steps))
    return result


def _write_summary(context: KedroContext, result: LadderResult) -> pd.DataFrame:
    """Save the summary through the catalog while the parent run is active, so it is logged there too."""
    table = summary_table(result.outcomes)
    threshold = next((float(o.f1_size["f1_threshold"]) for o in result.outcomes if o.f1_size), 0.5)
    title = f"Ablation {result.ablation_id}"
    catalog = context.catalog
    catalog.save("ablation_summary", table)
    markdown = summary_markdown(table, title, threshold)
    catalog.save("ablation_summary_markdown", markdown)
    figure = summary_plot(table, title)
    try:
        catalog.save("ablation_summary_plot", figure)
    finally:
        plt.close(figure)
    log.info("Ablation summary:\n%s", markdown)
    return table
