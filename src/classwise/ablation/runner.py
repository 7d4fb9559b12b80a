"""Run the ladder: the shared data stages once, then one Kedro session per step.

Each step is its own MLflow run, nested under one parent run for the whole
ladder and tagged ``ablation=<id>``, so the MLflow UI lists and compares them.
The parent run is opened here, and each child run too, before its Kedro session
starts: kedro-mlflow then logs the step's parameters, metrics and artifacts into
the run that is already active instead of opening its own, which is what lets
the runs carry step names and a shared parent.

Interrupted (Ctrl-C, SIGTERM), the ladder still writes the summary of the steps that
finished and logs it on the parent run, then ends the runs as KILLED.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from kedro.framework.context import KedroContext
from kedro.framework.startup import bootstrap_project

from classwise.ablation.executors.local import run_step
from classwise.ablation.executors.ray import ray_connection, run_steps_on_ray, tracking_server, tracking_uri_for_sessions
from classwise.ablation.ladder import (
    DATA_STAGE_BLOCKS,
    AblationConfig,
    Step,
    apply_overrides,
    expand_steps,
    parse_ablation,
    step_params,
)
from classwise.ablation.per_class import ablation_page
from classwise.ablation.step import (
    FAILED,
    FINISHED,
    STEP_FOLDER,
    end_runs_above,
    one_line,
    quiet_reuse_warnings,
    step_input_files,
    step_session,
)
from classwise.ablation.summary import StepOutcome, summary_markdown, summary_plot, summary_table
from classwise.core.errors import ConfigError, RunError
from classwise.framework.interrupts import ENDED_TAG, KILLED, RunInterrupted
from classwise.framework.parameters import check_parameters

log = logging.getLogger(__name__)


@dataclass
class LadderResult:
    ablation_id: str
    parent_run_id: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    data_error: str = ""  # why the shared data stages failed (then no step ran)
    caveat: str = ""  # the scale's caveat, shown with its summary
    interrupted: str = ""  # what stopped the ladder early (a signal's name), "" when it ran to its end

    @property
    def ok(self) -> bool:
        return not self.data_error and all(o.status == FINISHED for o in self.outcomes)


def _load_project(project_path: Path, env: str | None) -> tuple[KedroContext, dict[str, Any], AblationConfig]:
    bootstrap_project(project_path)
    context = step_session(project_path, env, None, {}).load_context()
    # kedro-mlflow has now pointed MLflow at the project's store (mlflow.yml).
    params = context.config_loader["parameters"]
    return context, params, parse_ablation(params.get("ablation"))


@dataclass
class LadderPlan:
    """What ``run_ladder`` would run: the data stage's parameters and each step's, resolved and checked."""

    scale: str
    scale_overrides: dict[str, Any]  # the scale's own overrides and the command line's, for the data stage and every step
    data_params: dict[str, Any]
    steps: list[Step]
    step_params: list[dict[str, Any]]  # exactly what each step's Kedro session gets
    step_overrides: list[dict[str, Any]]
    caveat: str = ""  # how far the scale's numbers go


def resolve_ladder(base_params: Mapping[str, Any], cfg: AblationConfig, scale: str | None = None,
                   extra_overrides: Mapping[str, Any] | None = None, only: Sequence[str] | None = None) -> LadderPlan:
    """Every run of the ladder, resolved by ``ladder.step_params`` and checked as the run will check it.

    The one resolution that the dry run, the pre-run check and the runs share: a step that
    passes here runs with these very parameters. Raises ConfigError naming the first bad step.
    """
    scale = scale or cfg.scale
    extra = dict(extra_overrides or {})
    steps = expand_steps(cfg, scale, only)
    scale_overrides = {**cfg.scales[scale].overrides, **extra}
    data_params = apply_overrides(base_params, scale_overrides)
    check_parameters(data_params)
    params = []
    for step in steps:
        try:
            resolved = step_params(base_params, step, extra)
            check_parameters(resolved)
        except ConfigError as exc:
            raise ConfigError(f"Ablation step '{step.name}': {exc}") from exc
        params.append(resolved)
    steps = [dataclasses.replace(step, reruns_data=any(resolved.get(block) != data_params.get(block)
                                                       for block in DATA_STAGE_BLOCKS))
             for step, resolved in zip(steps, params)]
    return LadderPlan(scale, scale_overrides, data_params, steps, params,
                      [{**step.overrides, **extra} for step in steps], cfg.scales[scale].caveat)


def plan_ladder(project_path: Path | str = ".", scale: str | None = None, env: str | None = None,
                only: Sequence[str] | None = None, extra_overrides: Mapping[str, Any] | None = None) -> LadderPlan:
    """What ``run_ladder`` would run, resolved and checked, without running anything."""
    _, params, cfg = _load_project(Path(project_path).resolve(), env)
    return resolve_ladder(params, cfg, scale, extra_overrides, only)


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
    project_path = Path(project_path).resolve()
    # Ray first: a wrong --address costs seconds, before the data stage runs and before any MLflow run opens.
    with (ray_connection(ray, project_path), tracking_server(project_path, ray.tracking_uri) as uri,
          tracking_uri_for_sessions(uri)):
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
        raise RunError(
            f"An MLflow run ({mlflow.active_run().info.run_id}) is already active; end it before running the ladder."
        )
    project_path = Path(project_path).resolve()
    context, base_params, cfg = _load_project(project_path, env)
    # Resolve and check every step before any run starts, so that a typo in the ladder costs no training.
    plan = resolve_ladder(base_params, cfg, scale, extra_overrides, only)
    scale, steps = plan.scale, plan.steps

    experiment = mlflow.set_experiment(context.mlflow.tracking.experiment.name)
    ablation_id = f"{scale}-{datetime.now():%Y%m%d-%H%M%S}"
    tags = {"ablation": ablation_id, "ablation.scale": scale}
    parent = mlflow.start_run(
        experiment_id=experiment.experiment_id,
        run_name=f"ablation-{ablation_id}",
        tags={**tags, "ablation.role": "parent",
              "mlflow.note.content": "\n\n".join(filter(None, (cfg.scales[scale].description,
                                                                 cfg.scales[scale].caveat)))},
    )
    result = LadderResult(ablation_id, parent.info.run_id, caveat=cfg.scales[scale].caveat)
    if result.caveat:
        log.warning("%s", result.caveat)
    log.info(
        "Ablation '%s': %d runs (%s) under MLflow run %s in experiment '%s'.",
        ablation_id, len(steps), ", ".join(s.name for s in steps), parent.info.run_id, experiment.name,
    )
    try:
        with quiet_reuse_warnings():
            try:
                step_session(project_path, env, plan.data_params, plan.scale_overrides).run(pipeline_names=[cfg.data_pipeline])
            except Exception as exc:
                result.data_error = one_line(exc)
                log.exception("The shared data stages failed, so no step ran: %s", result.data_error)
                end_runs_above(parent.info.run_id, FAILED)
                mlflow.set_tag("ablation.error", result.data_error[:5000])
                end_runs_above(None, FAILED)
                return result
            end_runs_above(parent.info.run_id, FINISHED)
            # Each outcome is kept as its step ends, so that an interruption loses none of them.
            if ray is None:
                files = step_input_files(context, cfg.step_pipeline, cfg.step_from_nodes)
                for step, params, overrides in zip(steps, plan.step_params, plan.step_overrides):
                    folder = project_path / STEP_FOLDER / ablation_id / step.name
                    result.outcomes.append(run_step(step, params, overrides, cfg, project_path, env, tags,
                                                    parent.info.run_id, files, folder))
            else:
                run_steps_on_ray(ray, context, steps, plan.step_params, plan.step_overrides, cfg, project_path, env,
                                 tags, parent.info.run_id, ablation_id, result.outcomes)
        result.summary = _write_summary(context, result)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (python -m classwise.ablation turns it into this)
        _end_interrupted(context, result, exc, [s.name for s in steps])
        raise
    except BaseException:
        end_runs_above(None, FAILED)
        raise
    failed = [o.step for o in result.outcomes if o.status != FINISHED]
    mlflow.set_tag("ablation.failed_steps", ", ".join(failed) or "none")
    mlflow.log_metrics({"ablation/steps_finished": len(steps) - len(failed), "ablation/steps_failed": len(failed)})
    end_runs_above(None, FINISHED if result.ok else FAILED)
    if failed:
        log.error("Ablation '%s': %d of %d steps FAILED: %s.", ablation_id, len(failed), len(steps), ", ".join(failed))
    else:
        log.info("Ablation '%s': all %d steps finished.", ablation_id, len(steps))
    return result


def _end_interrupted(context: KedroContext, result: LadderResult, exc: KeyboardInterrupt,
                     ladder_order: list[str]) -> None:
    """End the interrupted step's run, write and log the summary of the finished steps on the parent run,
    then end the parent: all KILLED."""
    result.interrupted = signal.Signals(exc.signum).name if isinstance(exc, RunInterrupted) else "KeyboardInterrupt"
    active = mlflow.active_run()
    if active is not None and active.info.run_id != result.parent_run_id:
        mlflow.set_tag(ENDED_TAG, result.interrupted)  # the step that was running
    end_runs_above(result.parent_run_id, KILLED)
    result.outcomes.sort(key=lambda o: ladder_order.index(o.step))  # Ray may have finished them out of order
    try:
        mlflow.set_tag(ENDED_TAG, result.interrupted)
        if result.outcomes:
            result.summary = _write_summary(context, result)
            log.warning("Ablation '%s' interrupted (%s): the summary of its %d finished step(s) is written and "
                        "logged on run %s.", result.ablation_id, result.interrupted, len(result.outcomes),
                        result.parent_run_id)
    except Exception as exc2:  # the runs must still end; the interruption is what the caller hears about
        log.error("Ablation '%s': the summary of the finished steps could not be written (%s).",
                  result.ablation_id, one_line(exc2))
    finally:
        end_runs_above(None, KILLED)


def _write_summary(context: KedroContext, result: LadderResult) -> pd.DataFrame:
    """Save the summary through the catalog while the parent run is active, so it is logged there too."""
    table = summary_table(result.outcomes)
    threshold = next((float(o.f1_size["f1_threshold"]) for o in result.outcomes if o.f1_size), 0.5)
    title = f"Ablation {result.ablation_id}"
    if result.interrupted:
        title += f" (interrupted by {result.interrupted}: the {len(result.outcomes)} step(s) that finished)"
    catalog = context.catalog
    catalog.save("ablation_summary", table)
    markdown = summary_markdown(table, title, threshold, result.caveat)
    catalog.save("ablation_summary_markdown", markdown)
    figure = summary_plot(table, title)
    try:
        catalog.save("ablation_summary_plot", figure)
    finally:
        plt.close(figure)
    catalog.save("ablation_report", ablation_page(title, result.caveat, result.outcomes, table))
    mlflow.set_tag("mlflow.note.content", markdown)  # the parent run's description: the ladder table
    log.info("Ablation summary:\n%s", markdown)
    log.info("Per class, step by step: data/08_reporting/ablation/ablation_report.html (also on the parent run).")
    return table
