"""A ladder interrupted after its first step still writes and logs the summary of that step, then ends KILLED.

In process: the real runner, data stage and MLflow store, with the step's Kedro session
replaced (the first finishes at once, the second is interrupted as SIGTERM interrupts
`python -m classwise.ablation`), so that no step trains.
"""

from __future__ import annotations

import signal

import mlflow
import pandas as pd
import pytest

from classwise.ablation import runner
from classwise.ablation.executors import local
from classwise.ablation.summary import StepOutcome
from classwise.framework.interrupts import ENDED_TAG, RunInterrupted
from tests.conftest import copy_project
from tests.support.sessions import mlflow_state_restored

LADDER = """
ablation:
  scale: tiny
  scales:
    tiny:
      description: three steps, the second interrupted
      overrides: {train.epochs: 1, train.progress: false, train.model_options: {width: 4}}
      steps:
        - {name: baseline, changes: "width 4"}
        - {name: wider, extends: baseline, changes: "width 8", overrides: {train.model_options: {width: 8}}}
        - {name: never_run, extends: baseline, changes: "no weight decay", overrides: {train.weight_decay: 0.0}}
"""
METRICS = {subset: {"top1": 0.5, "macro_f1": 0.4} for subset in ("train", "val", "test")}
F1_SIZE = {"pearson_r": 0.3, "classes_below_threshold": ["3"], "f1_threshold": 0.5}


@pytest.fixture(scope="module")
def interrupted_ladder(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("interrupted") / "project")
    (project / "conf" / "local" / "parameters_ablation.yml").write_text(LADDER)

    def step_session(step, params, overrides, cfg, project_path, env, run_id):
        if step.name == "baseline":
            return StepOutcome(step.name, step.changes, "FINISHED", 1.5, run_id, METRICS, F1_SIZE)
        raise RunInterrupted(signal.SIGTERM)  # what the command's SIGTERM handler raises mid-step

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "execute_step", step_session)
        patch.chdir(project)
        with mlflow_state_restored(), pytest.raises(RunInterrupted):
            runner.run_ladder(project)
    from kedro.framework.project import configure_project

    configure_project("classwise")  # back to the package the tests import
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("classwise").experiment_id])
    return project, client, {r.info.run_name: r for r in runs}


def test_the_summary_of_the_finished_step_is_written_and_logged_on_the_parent(interrupted_ladder):
    project, client, runs = interrupted_ladder
    (parent,) = [r for r in runs.values() if r.data.tags.get("ablation.role") == "parent"]
    reports = project / "data" / "08_reporting" / "ablation"
    table = pd.read_csv(reports / "ablation_summary.csv")
    assert table["step"].tolist() == ["baseline"] and table["status"].tolist() == ["FINISHED"]
    assert table.loc[0, "val_accuracy"] == 0.5
    assert "interrupted by SIGTERM" in (reports / "ablation_summary.md").read_text()
    assert (reports / "ablation_summary.png").stat().st_size > 0
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "ablation")}
    assert logged == {"ablation/ablation_summary.csv", "ablation/ablation_summary.md", "ablation/ablation_summary.png",
                      "ablation/ablation_report.html"}


def test_the_interrupted_step_and_the_parent_end_killed_and_say_why(interrupted_ladder):
    _, _, runs = interrupted_ladder
    (parent,) = [r for r in runs.values() if r.data.tags.get("ablation.role") == "parent"]
    assert sorted(runs) == sorted(["baseline", "wider", parent.info.run_name])  # never_run never started
    assert runs["baseline"].info.status == "FINISHED"
    for run in (runs["wider"], parent):
        assert run.info.status == "KILLED", run.info.run_name
        assert run.data.tags[ENDED_TAG] == "SIGTERM"
