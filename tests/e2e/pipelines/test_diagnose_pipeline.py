"""`kedro run --pipelines=diagnose` as a user types it, on the session's trained project."""

from __future__ import annotations

import json

import mlflow
import pandas as pd

from tests.conftest import kedro


TINY = ",".join(["diagnose.folds=2", "diagnose.recipe.epochs=1", "diagnose.recipe.model_options.width=4",
                 "diagnose.recipe.milestones=[]", "diagnose.recipe.progress=false",
                 "diagnose.bootstrap_resamples=100"])


def test_kedro_run_diagnose_on_the_saved_data_writes_every_report(trained_copy):
    project_copy = trained_copy
    proc = kedro(project_copy, "run", "--pipelines=diagnose", f"--params={TINY}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = project_copy / "data/08_reporting"
    for name in ["label_issues.csv", "label_issues.png", "class_diagnosis.csv", "class_diagnosis.png",
                 "oof_f1_size_correlation.json"]:
        assert (reports / name).is_file(), name
    issues = pd.read_csv(reports / "label_issues.csv")
    assert list(issues.columns[:4]) == ["rank", "id", "source_file", "label"]
    correlation = json.loads((reports / "oof_f1_size_correlation.json").read_text())
    assert correlation["out_of_fold"]["n_classes"] == 10

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert [r.info.status for r in runs] == ["FINISHED"]
    metrics = runs[0].data.metrics
    assert metrics["diagnose/label_issues"] == len(issues)
    assert "diagnose/oof_macro_f1" in metrics and "curves/fold2.val_accuracy" in metrics
    assert "diagnose/noise_precision" not in metrics  # the digits have no flipped labels
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "diagnose")}
    assert {"diagnose/label_issues.csv", "diagnose/class_diagnosis.png"} <= artifacts
