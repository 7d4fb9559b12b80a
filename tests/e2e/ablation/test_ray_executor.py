"""The ladder on a local Ray cluster (2 CPUs, a small object store), as a user runs it: nested runs,
statuses and a summary identical in content to the sequential runner's for the same steps and seeds
(the sequential ladder is the session's shared one, tests/e2e/conftest.py)."""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
import pytest

from tests.conftest import copy_project
from tests.e2e.conftest import TINY_LADDER, run_ladder_command

STEPS = ["baseline", "broken"]  # one that finishes, one that fails
SAME_CONTENT = ["step", "changes", "status", "train_accuracy", "val_accuracy", "test_accuracy", "val_macro_f1",
                "test_macro_f1", "classes_under_f1", "f1_size_r"]


@pytest.fixture(scope="session")  # built once a worker: xdist may run other modules between these tests
def both(tmp_path_factory, local_ladder):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    project = copy_project(tmp_path_factory.mktemp("ray") / "project")
    (project / "conf" / "local" / "parameters_ablation.yml").write_text(TINY_LADDER)
    proc = run_ladder_command(project, "--executor", "ray", "--num-cpus", "2", "--steps", ",".join(STEPS))
    return {"local": local_ladder, "ray": (project, proc)}


def test_ray_steps_nest_under_one_parent_with_the_right_statuses(both):
    project, proc = both["ray"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Starting an MLflow tracking server for the ladder at http://127.0.0.1:" in output
    assert "View run" not in output  # MLflow's own line at every run's end, muted by the package
    assert "Traceback" not in output  # the broken step's ConfigError is its one sentence
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("classwise").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("ablation.role") == "parent"]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert len(runs) == 1 + len(STEPS) and sorted(children) == sorted(STEPS)
    assert parent.info.status == "FAILED" and parent.data.tags["ablation.failed_steps"] == "broken"
    for name, run in children.items():
        assert run.info.status == ("FAILED" if name == "broken" else "FINISHED"), name
        assert run.data.tags["ablation"] == parent.data.tags["ablation"]
    assert "WRN depth must be 6n + 4" in children["broken"].data.tags["ablation.error"]
    baseline = children["baseline"]
    assert baseline.data.params["train.model_options.width"] == "4"
    assert [m.step for m in client.get_metric_history(baseline.info.run_id, "curves/val_accuracy")] == [1, 2]
    assert "reports/metrics.json" in {a.path for a in client.list_artifacts(baseline.info.run_id, "reports")}
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "ablation")} >= {"ablation/ablation_summary.csv"}


def test_ray_summary_has_the_content_of_the_sequential_one(both):
    tables = {executor: pd.read_csv(project / "data/08_reporting/ablation/ablation_summary.csv")
              for executor, (project, _) in both.items()}
    assert tables["ray"]["step"].tolist() == STEPS
    local = tables["local"].set_index("step").loc[STEPS].reset_index()
    pd.testing.assert_frame_equal(tables["ray"][SAME_CONTENT], local[SAME_CONTENT], check_exact=False, atol=1e-6)


def test_without_ray_the_error_names_the_extra(monkeypatch):
    from classwise.ablation.executors.ray import require_ray
    from classwise.core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        require_ray()
