"""One ladder step as a Kedro session inside its MLflow run: what every executor runs and records.

Shared by the local executor (steps one after another in this process) and the Ray executor
(each step a Ray task), so both run, tag and record a step the same way.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession

from classwise.ablation.ladder import AblationConfig, Step, nest
from classwise.core.errors import ClasswiseError, ConfigError
from classwise.ablation.summary import StepOutcome

log = logging.getLogger(__name__)

FINISHED, FAILED = "FINISHED", "FAILED"
# Every step runs in a folder of its own, <ablation id>/<step>/ under this, whichever executor runs it: its
# model, checkpoints and reports stay there, and the project's own data/06_models/model.pt is never replaced.
STEP_FOLDER = Path("data") / "07_model_output" / "ablation_steps"
OPTIONAL = "classwise.framework.datasets.OptionalDataset"


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


def step_input_files(context: Any, pipeline_name: str, from_nodes: Sequence[str]) -> dict[str, bytes]:
    """The files of the datasets a step reads from the data stages, by path under the project root."""
    from kedro.framework.project import find_pipelines, pipelines

    # Kedro 1.7 finds only the pipelines the last session ran (here: the data stages) unless told otherwise.
    requested = getattr(pipelines, "_requested_pipelines", None)
    pipelines._requested_pipelines = [pipeline_name]
    try:
        pipeline = find_pipelines(raise_errors=True)[pipeline_name]
    finally:
        pipelines._requested_pipelines = requested
    names = sorted(n for n in pipeline.from_nodes(*from_nodes).inputs()
                   if not n.startswith("params:") and n != "parameters")
    catalog_conf = context.config_loader["catalog"]
    files: dict[str, bytes] = {}
    for name in names:
        entry = catalog_conf.get(name) or {}
        filepath = entry.get("filepath") or (entry.get("dataset") or {}).get("filepath")
        if not filepath or entry.get("versioned"):
            raise ConfigError(f"Catalog entry '{name}' is read by every ablation step but is not one plain file; "
                              f"give it a filepath (unversioned) in conf/base/catalog.yml, so that each step can get "
                              f"a copy in its own folder.")
        path = Path(filepath) if Path(filepath).is_absolute() else Path(context.project_path) / filepath
        if entry.get("type") == OPTIONAL and not path.is_file():
            continue  # an optional input (the last diagnosis, for report.html) that has not been written
        files[str(Path(filepath))] = path.read_bytes()
    return files


def step_folder(project_path: Path, step_dir: Path, files: Mapping[str, bytes]) -> Path:
    """A project root for one step: the project's conf and pyproject, the shipped data files, nothing else."""
    step_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(project_path / "pyproject.toml", step_dir)
    shutil.copytree(project_path / "conf", step_dir / "conf", dirs_exist_ok=True)
    for relative, blob in files.items():
        target = step_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    return step_dir


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
    metrics = f1_size = per_class = None
    status, error = FINISHED, ""
    start = time.perf_counter()
    session = None
    try:
        if step.reruns_data:
            # Its own data (e.g. data.label_fixes): the data stages again, writing only into this step's folder.
            log.info("Ablation step '%s' changes the data stages' parameters: they run again in its own folder.",
                     step.name)
            session = step_session(project_path, env, params, overrides)
            session.run(pipeline_names=[cfg.data_pipeline])
            session.close()
            end_runs_above(run_id, FINISHED)
        session = step_session(project_path, env, params, overrides)
        session.run(pipeline_names=[cfg.step_pipeline], from_nodes=cfg.step_from_nodes)
        catalog = session.context.catalog  # type: ignore[union-attr]
        metrics = catalog.load("metrics")
        f1_size = catalog.load("f1_size_correlation")
        per_class = catalog.load("per_class_report")
    except Exception as exc:  # a failing step must not stop the ladder
        status, error = FAILED, one_line(exc)
        # The package's own errors are one sentence that names the fix: a traceback would only bury it.
        report = log.error if isinstance(exc, ClasswiseError) else log.exception
        report("Ablation step '%s' FAILED: %s", step.name, error)
    finally:
        wall = time.perf_counter() - start
        if session is not None:
            session.close()
    return StepOutcome(step.name, step.changes, status, wall, run_id, metrics, f1_size, error, per_class)


def record_step(outcome: StepOutcome) -> StepOutcome:
    """Log a step's wall time and status on its run, and end it with that status."""
    run_id, status, error = outcome.run_id, outcome.status, outcome.error
    # The client writes to the step's run by id, whichever run the fluent API has active.
    client = mlflow.MlflowClient()
    # After the curves in the run's charts (its F1-vs-size numbers are the evaluate stage's final/ ones).
    client.log_metric(run_id, "step/wall_seconds", round(outcome.wall_seconds, 1))
    client.set_tag(run_id, "ablation.status", status)
    if error:
        client.set_tag(run_id, "ablation.error", error[:5000])
    client.set_terminated(run_id, status)  # in case something ended it before with another status
    log.info("Ablation step '%s' %s in %.1f s.", outcome.step, status, outcome.wall_seconds)
    return outcome
