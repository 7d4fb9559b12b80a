"""The ladder on a local Ray cluster (2 CPUs, a small object store), as a user runs it: nested runs,
statuses and a summary identical in content to the sequential runner's for the same seeds."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pandas as pd
import pytest

from tests.ablation.test_runner import TINY_LADDER
from tests.conftest import copy_project


# The sequential test's ladder less its sweep's second value: 3 steps, the middle one failing.
DENSENET_STEP = TINY_LADDER[TINY_LADDER.index("        - {name: densenet"):TINY_LADDER.index("        - {name: weight_decay")]
THREE_STEPS = TINY_LADDER.replace("values: [5.0e-4, 1.0e-3]", "values: [5.0e-4]").replace(DENSENET_STEP, "")
STEPS = ["baseline", "broken", "weight_decay_5e-4"]
SAME_CONTENT = ["step", "changes", "status", "train_accuracy", "val_accuracy", "test_accuracy", "val_macro_f1",
                "test_macro_f1", "classes_under_f1", "f1_size_r"]


def _ladder(project, *args):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "classwise.ablation", *args], cwd=project, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    runs = {}
    for executor in ("local", "ray"):
        project = copy_project(tmp_path_factory.mktemp(executor) / "project")
        (project / "conf" / "local" / "parameters_ablation.yml").write_text(THREE_STEPS)
        extra = ["--executor", "ray", "--num-cpus", "2"] if executor == "ray" else []
        runs[executor] = (project, _ladder(project, *extra))
    return runs


def test_ray_steps_nest_under_one_parent_with_the_right_statuses(both):
    project, proc = both["ray"]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Starting an MLflow tracking server for the ladder at http://127.0.0.1:" in output
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
    assert [m.step for m in client.get_metric_history(baseline.info.run_id, "val_accuracy")] == [1, 2]
    assert "reports/metrics.json" in {a.path for a in client.list_artifacts(baseline.info.run_id, "reports")}
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "ablation")} >= {"ablation/ablation_summary.csv"}


def test_ray_summary_has_the_content_of_the_sequential_one(both):
    tables = {executor: pd.read_csv(project / "data/08_reporting/ablation/ablation_summary.csv")
              for executor, (project, _) in both.items()}
    assert tables["ray"]["step"].tolist() == STEPS
    pd.testing.assert_frame_equal(tables["ray"][SAME_CONTENT], tables["local"][SAME_CONTENT], check_exact=False,
                                  atol=1e-6)


def test_without_ray_the_error_names_the_extra(monkeypatch):
    from classwise.ablation.executors.ray import require_ray
    from classwise.core.config import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        require_ray()
