"""`kedro run --pipelines=data` on a user's folder, as typed, tracked in MLflow."""

import mlflow
import pandas as pd

from tests.conftest import kedro
from tests.unit.pipelines.test_data_pipeline import make_folder


def test_kedro_run_data_on_a_users_folder_tracked_in_mlflow(project_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # so rich does not wrap the log line checked below
    make_folder(tmp_path / "my images")
    root = tmp_path / "my images"
    proc = kedro(project_copy, "run", "--pipelines=data",
                 f"--params=data.source=image_folder,data.root={root},split.val_per_class=2,"
                 "split.test_per_class=2,data.image_folder.workers=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = " ".join((proc.stderr + proc.stdout).split())  # rich wraps long log lines
    assert "1 broken files rejected, 1 other files ignored" in log
    rejected = pd.read_csv(project_copy / "data/02_intermediate/rejected_images.csv")
    assert rejected["reason"].str.contains("truncated|not an image").iloc[0]
    duplicates = pd.read_csv(project_copy / "data/02_intermediate/duplicate_images.csv")
    assert len(duplicates) == 2
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("classwise").experiment_id])[0]
    assert run.data.params["data.source"] == "image_folder"
    assert run.data.metrics["data/rejected_files"] == 1 and run.data.metrics["split/test_images"] == 6
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "data")}
    assert {"data/rejected_images.csv", "data/duplicate_images.csv"} <= artifacts
