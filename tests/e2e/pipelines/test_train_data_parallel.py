"""`kedro run --params=train.nproc_per_node=2`: one command, one MLflow run, 2 gloo processes; killed
with SIGKILL in epoch 2, the rerun resumes from rank 0's checkpoint."""

from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from classwise.training.checkpoint import load_checkpoint
from tests.conftest import kedro, kedro_killed_after_first_checkpoint

TINY = ",".join([
    "train.nproc_per_node=2", "train.epochs=2", "train.model_options.width=4", "train.milestones=[1]",
    "train.progress=false",
])


def test_two_process_kedro_run_checkpoints_and_resumes_after_a_kill(project_copy: Path):
    command = ["run", "--pipelines=train", f"--params={TINY}"]
    checkpoints = project_copy / "data" / "06_models" / "checkpoints"
    kedro_killed_after_first_checkpoint(project_copy, *command, timeout_s=400)
    (checkpoint,) = checkpoints.glob("*.pt")
    assert load_checkpoint(checkpoint)["epoch"] == 1

    # The rerun takes the checkpoint's lock: an orphaned replica still holding it would refuse it.
    second = kedro(project_copy, *command, one_thread=True)
    assert second.returncode == 0, second.stderr[-3000:]
    log = " ".join((second.stdout + second.stderr).split())
    assert "Data-parallel training in 2 processes (gloo" in log
    assert "Resuming from checkpoint" in log and "after epoch 1 of 2" in log
    history = pd.read_csv(project_copy / "data" / "07_model_output" / "training_history.csv")
    assert history["epoch"].tolist() == [1, 2]
    assert load_checkpoint(checkpoint)["epoch"] == 2
    assert (project_copy / "data" / "08_reporting" / "metrics.json").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["KILLED", "FINISHED"]
    finished = runs[-1]
    assert finished.data.params["train.nproc_per_node"] == "2"
    # Epoch rows came from rank 0 through the launching process, once each (epoch 1 replayed from the checkpoint).
    assert [m.step for m in client.get_metric_history(finished.info.run_id, "curves/val_accuracy")] == [1, 2]
