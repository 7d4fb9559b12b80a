"""The ladder end to end, as a user runs it, in a throwaway copy of the project.

One tiny ladder (two epochs of a width-4 network; a step whose WRN depth cannot be built in
the middle) runs once for the module; the tests read it back the way a person
would: through MlflowClient on the SQLite store, and through `mlflow server`'s
REST API, which is what the MLflow UI reads.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import mlflow
import pandas as pd
import pytest
import torch

from classwise.ablation.executors.ray import tracking_server
from tests.conftest import copy_project
from classwise.ablation.step import STEP_FOLDER
from tests.e2e.conftest import LADDER_STEPS, TINY_LADDER, USERS_MODEL, USERS_MODEL_BYTES

STEPS = LADDER_STEPS


@pytest.fixture(scope="module")
def ladder(local_ladder):
    project, proc = local_ladder
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    runs = client.search_runs([experiment.experiment_id])
    return project, proc, client, experiment, runs


def _parent_and_children(runs):
    parents = [r for r in runs if r.data.tags.get("ablation.role") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    return parent, children


def test_one_nested_run_a_step_and_a_failing_step_does_not_stop_the_ladder(ladder):
    project, proc, client, _, runs = ladder
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "WRN depth must be 6n + 4" in output
    assert "a tiny ladder checks the mechanics only" in output  # the scale's caveat, in the console
    parent, children = _parent_and_children(runs)
    assert len(runs) == 1 + len(STEPS)
    assert sorted(children) == sorted(STEPS)
    ablation_id = parent.data.tags["ablation"]
    assert parent.info.status == "FAILED" and parent.data.tags["ablation.failed_steps"] == "broken"
    for name, run in children.items():
        assert run.data.tags["ablation"] == ablation_id and run.data.tags["ablation.scale"] == "tiny"
        assert run.info.status == ("FAILED" if name == "broken" else "FINISHED"), name
    # The steps ran in ladder order, the failing one in the middle.
    assert sorted(children, key=lambda n: children[n].info.start_time) == STEPS
    assert "WRN depth must be 6n + 4" in children["broken"].data.tags["ablation.error"]


def test_each_step_carries_its_parameters_metric_history_and_reports(ladder):
    _, _, client, _, runs = ladder
    parent, children = _parent_and_children(runs)
    expected_decay = {"baseline": "0.0", "weight_decay_5e-4": "0.0005", "weight_decay_1e-3": "0.001"}
    for name, decay in expected_decay.items():
        run = children[name]
        params = run.data.params
        assert params["train.model"] == "preact_resnet18" and params["train.weight_decay"] == decay
        assert params["train.model_options.width"] == "4" and params["train.epochs"] == "2"
        assert "data.source" not in params  # the shared data stages ran once, in the parent run
        history = client.get_metric_history(run.info.run_id, "curves/val_accuracy")
        assert [m.step for m in history] == [1, 2]
        assert {"final/val_top1", "final/test_macro_f1", "step/wall_seconds"} <= set(run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
        assert {"reports/metrics.json", "reports/per_class_report.csv"} <= artifacts
    assert children["broken"].data.params["train.model"] == "wrn"
    # A dict override replaces the scale's dict: the run got exactly what the check saw.
    densenet = children["densenet"].data.params
    assert densenet["train.model"] == "densenet_bc" and densenet["train.model_options.depth"] == "10"
    assert "train.model_options.width" not in densenet
    assert parent.data.params["data.source"] == "digits"


def test_the_users_model_stays_byte_identical_and_each_step_keeps_its_own(ladder):
    project, _, _, _, runs = ladder
    parent, children = _parent_and_children(runs)
    assert (project / USERS_MODEL).read_bytes() == USERS_MODEL_BYTES
    steps = project / STEP_FOLDER / parent.data.tags["ablation"]
    for name in STEPS:
        model = steps / name / USERS_MODEL
        if name == "broken":
            assert not model.exists()
            continue
        config = torch.load(model, weights_only=True)["config"]
        assert config["options"] == ({"depth": 10, "growth": 4} if name == "densenet" else {"width": 4}), name
        assert (steps / name / "data" / "08_reporting" / "report.html").is_file()


def test_a_step_with_label_fixes_runs_the_data_stages_in_its_own_folder_and_leaves_the_projects(ladder):
    project, _, client, _, runs = ladder
    parent, children = _parent_and_children(runs)
    steps = project / STEP_FOLDER / parent.data.tags["ablation"]
    applied = pd.read_csv(steps / "cleaned" / "data/02_intermediate/applied_label_fixes.csv", dtype=str)
    assert sorted(applied["id"]) == ["digits/0000", "digits/0001", "digits/0004"]
    # The project's own data and the other steps' saw no fix: their split still holds the dropped images.
    project_split = pd.read_parquet(project / "data/03_primary/split.parquet")
    assert {"digits/0000", "digits/0001"} <= set(project_split["id"])
    assert not (project / "data/02_intermediate/applied_label_fixes.csv").is_file() or pd.read_csv(
        project / "data/02_intermediate/applied_label_fixes.csv").empty
    cleaned_split = pd.read_parquet(steps / "cleaned" / "data/03_primary/split.parquet")
    assert len(cleaned_split) == len(project_split) - 2
    assert not {"digits/0000", "digits/0001"} & set(cleaned_split["id"])
    cleaned = children["cleaned"]
    assert cleaned.data.params["data.label_fixes"] == "data/01_raw/label_fixes.csv"
    assert "final/test_top1" in cleaned.data.metrics


def test_the_summary_is_written_and_logged_to_the_parent_run(ladder):
    project, _, client, _, runs = ladder
    parent, children = _parent_and_children(runs)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "ablation")}
    assert artifacts == {"ablation/ablation_summary.csv", "ablation/ablation_summary.md", "ablation/ablation_summary.png",
                         "ablation/ablation_report.html"}
    assert "| baseline |" in parent.data.tags["mlflow.note.content"]  # the ladder table is the run's description
    page = (project / "data/08_reporting/ablation/ablation_report.html").read_text()
    assert 'id="heatmap"' in page and "<b>densenet</b> against broken" not in page  # a failed step has no column
    assert "<b>weight_decay_1e-3</b> against weight_decay_5e-4" in page
    table = pd.read_csv(project / "data/08_reporting/ablation/ablation_summary.csv")
    assert table["step"].tolist() == STEPS
    assert table["status"].tolist() == ["FINISHED", "FAILED", "FINISHED", "FINISHED", "FINISHED", "FINISHED"]
    finished = table[table["status"] == "FINISHED"]
    assert finished[["train_accuracy", "val_accuracy", "test_accuracy", "val_macro_f1"]].notna().all().all()
    assert table.loc[1, ["val_accuracy", "test_accuracy"]].isna().all()
    baseline = children["baseline"]
    assert table.loc[0, "val_accuracy"] == pytest.approx(baseline.data.metrics["final/val_top1"])
    assert table.loc[0, "run_id"] == baseline.info.run_id
    markdown = (project / "data/08_reporting/ablation/ablation_summary.md").read_text()
    assert all(f"| {step} |" in markdown for step in STEPS)
    assert "> a tiny ladder checks the mechanics only" in markdown  # the caveat heads the table
    assert "a tiny ladder checks the mechanics only" in parent.data.tags["mlflow.note.content"]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_mlflow_server_lists_the_ladder_the_way_the_ui_reads_it(ladder):
    project, _, _, experiment, runs = ladder
    parent, _ = _parent_and_children(runs)
    # The ladder's own local tracking server (the one `--executor ray` starts), over the ladder's mlflow.db.
    with tracking_server(project, None) as base:
        found = _post(
            f"{base}/api/2.0/mlflow/runs/search",
            {"experiment_ids": [experiment.experiment_id],
             "filter": f"tags.ablation = '{parent.data.tags['ablation']}'", "max_results": 100},
        )["runs"]
        by_name = {r["info"]["run_name"]: r for r in found}
        assert sorted(by_name) == sorted([parent.info.run_name, *STEPS])
        for name in STEPS:
            tags = {t["key"]: t["value"] for t in by_name[name]["data"]["tags"]}
            assert tags["mlflow.parentRunId"] == parent.info.run_id
            assert by_name[name]["info"]["status"] == ("FAILED" if name == "broken" else "FINISHED")
        params = {p["key"]: p["value"] for p in by_name["weight_decay_1e-3"]["data"]["params"]}
        assert params["train.weight_decay"] == "0.001"
        metrics = {m["key"] for m in by_name["baseline"]["data"]["metrics"]}
        assert {"curves/val_accuracy", "final/test_top1"} <= metrics


def test_a_step_with_a_refused_parameter_stops_the_ladder_before_any_run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from classwise.ablation.__main__ import main
    from tests.support.sessions import mlflow_state_restored

    project = copy_project(tmp_path / "project")
    (project / "conf" / "local" / "parameters_ablation.yml").write_text(
        TINY_LADDER.replace("train.model: wrn, train.model_options: {depth: 27, widen: 1, width: 4}",
                            "train.model: no_such_net"))
    monkeypatch.chdir(project)
    with mlflow_state_restored():
        result = CliRunner().invoke(main, ["--project-path", str(project)])
    assert result.exit_code == 2, result.output
    assert "Error: Ablation step 'broken': Parameter 'train.model' is 'no_such_net'" in result.output
    assert not (project / "data" / "02_intermediate" / "dataset.npz").exists()
    if (project / "mlflow.db").exists():
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("classwise")
        assert experiment is None or not client.search_runs([experiment.experiment_id])
