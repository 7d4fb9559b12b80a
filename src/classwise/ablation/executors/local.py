"""The local executor: one ladder step in this process as a nested MLflow run; the runner calls it step by step,
so that each outcome is kept as it ends (an interrupted ladder still summarises the finished steps)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow

from classwise.ablation.ladder import AblationConfig, Step
from classwise.ablation.step import FAILED, end_runs_above, execute_step, one_line, record_step, step_folder, step_tags
from classwise.ablation.summary import StepOutcome

log = logging.getLogger(__name__)


def run_step(
    step: Step,
    params: dict[str, Any],
    overrides: Mapping[str, Any],
    cfg: AblationConfig,
    project_path: Path,
    env: str | None,
    tags: dict[str, str],
    parent_run_id: str,
    files: Mapping[str, bytes],
    folder: Path,
) -> StepOutcome:
    """The step in ``folder`` (the project's conf and the data stages' ``files``), as the Ray executor runs it."""
    run = mlflow.start_run(run_name=step.name, nested=True, tags=step_tags(step, tags))
    log.info("Ablation step '%s' (%s): %s; its outputs go to %s", step.name, run.info.run_id, step.changes,
             folder.relative_to(project_path) if folder.is_relative_to(project_path) else folder)
    try:
        step_folder(project_path, folder, files)
    except OSError as exc:
        outcome = StepOutcome(step.name, step.changes, FAILED, 0.0, run.info.run_id, error=one_line(exc))
    else:
        outcome = execute_step(step, params, overrides, cfg, folder, env, run.info.run_id)
    end_runs_above(parent_run_id, outcome.status)
    return record_step(outcome)
