"""`kedro run` as a user types it, in a throwaway copy of the project, tracked in MLflow (SQLite)."""

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import NEW_IMAGES_GOOD, NEW_IMAGES_REJECTED, kedro
from tests.e2e.conftest import TRAIN_TINY as TINY


def runs(project: Path) -> list:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    return client, client.search_runs([experiment.experiment_id])


def test_kedro_run_train_end_to_end_tracked_in_mlflow(trained_project):
    project_copy, proc = trained_project
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    lines = console.splitlines()
    # A console worth reading: no third-party warnings or catalog chatter, a summary at the end.
    assert "Warning" not in console and "Traceback" not in console, console[:3000]
    assert "Loading data from" not in console and "Completed node" not in console
    assert len(lines) <= 60, console
    tail = "\n".join(proc.stdout.splitlines()[-15:])  # the summary closes standard output
    assert re.search(r"test  top-1 \d\.\d{3}   macro-F1 \d\.\d{3}", tail), tail
    assert "classes under F1 0.50" in tail and "F1 vs class size: Pearson r" in tail
    data = project_copy / "data"
    for path in [
        "02_intermediate/dataset.npz", "02_intermediate/rejected_images.csv", "03_primary/split.parquet",
        "04_feature/normalization_stats.json", "06_models/model.pt", "07_model_output/training_history.csv",
        "07_model_output/predictions.parquet", "08_reporting/metrics.json", "08_reporting/per_class_report.csv",
        "08_reporting/f1_size_correlation.json", "08_reporting/class_distribution.png",
    ]:
        assert (data / path).is_file(), path
    history = pd.read_csv(data / "07_model_output/training_history.csv")
    assert history["epoch"].tolist() == [1, 2]
    metrics = json.loads((data / "08_reporting/metrics.json").read_text())
    assert {"train", "val", "test"} <= set(metrics)

    client, found = runs(project_copy)
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED"
    assert f"MLflow run {run.info.run_id}" in tail and f"/runs/{run.info.run_id}" in tail
    # MLflow that reads well: a name that says what ran, the headline numbers as the description,
    # no object reprs among the tags.
    assert re.fullmatch(r"train-preact_resnet18-\d{8}-\d{6}", run.info.run_name), run.info.run_name
    assert f"test  top-1 {metrics['test']['top1']:.3f}" in run.data.tags["mlflow.note.content"]
    assert not [v for v in run.data.tags.values() if " object at 0x" in v]
    assert run.data.params["train.epochs"] == "2" and run.data.params["data.source"] == "digits"
    assert run.data.params["train.model_options.width"] == "8"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "curves/val_accuracy")]
    assert steps == [1, 2]
    assert run.data.metrics["final/test_top1"] == pytest.approx(metrics["test"]["top1"])
    artifacts = {a.path for d in ("reports", "figures", "model") for a in client.list_artifacts(run.info.run_id, d)}
    assert {"reports/per_class_report.csv", "reports/metrics.json", "figures/class_distribution.png",
            "model/model.pt"} <= artifacts

    # The run logged an MLflow Model and registered it, headline metrics as tags.
    version = client.get_model_version("classwise", "1")
    assert version.run_id == run.info.run_id
    assert float(version.tags["test.top1"]) == pytest.approx(metrics["test"]["top1"], abs=1e-6)
    info = json.loads((data / "06_models/mlflow_model.json").read_text())
    assert info["registered_model_uri"] == "models:/classwise/1"


def test_predict_on_a_folder_and_a_shorter_rerun_beside_the_checkpoint(trained_copy, new_images_folder):
    project_copy, data = trained_copy, trained_copy / "data"
    # kedro run --pipelines=predict on a folder of good, broken and odd files, as a user types it.
    proc = kedro(project_copy, "run", "--pipelines=predict",
                 f"--params=predict.input={new_images_folder},predict.top_k=3,predict.progress=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = pd.read_csv(data / "07_model_output/new_predictions.csv")
    assert sorted(predicted["file"]) == sorted(NEW_IMAGES_GOOD)
    assert list(predicted.columns[:3]) == ["file", "class_1", "probability_1"] and "class_3" in predicted
    rejected = pd.read_csv(data / "07_model_output/new_predictions_rejected.csv")
    assert set(rejected["file"]) == set(NEW_IMAGES_REJECTED) and rejected["reason"].notna().all()
    assert (data / "08_reporting/new_predictions.png").is_file()

    # Fewer epochs than the checkpoint holds: trained beside it, and said so in one line.
    shorter = kedro(project_copy, "run", "--pipelines=train", "--from-nodes=train_model", "--to-nodes=train_model",
                    f"--params={TINY},train.epochs=1")
    assert shorter.returncode == 0, shorter.stderr[-3000:]
    assert "more than train.epochs = 1: it is kept" in shorter.stdout
    assert len(list((data / "06_models/checkpoints").glob("*.pt"))) == 2


def test_a_failing_run_ends_failed_in_mlflow_with_one_sentence(project_copy):
    proc = kedro(project_copy, "run", "--pipelines=train", "--params=data.source=image_folder,data.root=no/such")
    assert proc.returncode == 2
    assert "Error: Image folder 'no/such' (parameter 'data.root') does not exist" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    _, found = runs(project_copy)
    assert [r.info.status for r in found] == ["FAILED"]
