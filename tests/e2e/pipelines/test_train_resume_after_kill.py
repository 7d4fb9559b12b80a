"""`kedro run` killed with SIGKILL during epoch 2, then rerun: it resumes, each epoch once, and marks the
killed run's MLflow run KILLED."""

import signal
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from classwise.framework.interrupts import ENDED_TAG
from classwise.training.checkpoint import load_checkpoint
from tests.conftest import kedro, kedro_killed_after_first_checkpoint

TINY = ",".join([
    "train.epochs=3", "train.model_options.width=8", "train.milestones=[1]", "train.progress=false",
])


def test_kedro_run_killed_in_epoch_2_resumes_with_each_epoch_once(project_copy: Path):
    # Up to training: what a kill and a resume are about (evaluation and model logging add nothing here).
    command = ["run", "--pipelines=train", "--to-nodes=train_model", f"--params={TINY}"]
    checkpoints = project_copy / "data" / "06_models" / "checkpoints"
    status = kedro_killed_after_first_checkpoint(project_copy, *command, timeout_s=300)
    assert status == -signal.SIGKILL
    (checkpoint,) = checkpoints.glob("*.pt")
    assert load_checkpoint(checkpoint)["epoch"] == 1  # the kill landed in epoch 2
    assert not (project_copy / "data" / "07_model_output" / "training_history.csv").exists()

    second = kedro(project_copy, *command, one_thread=True)
    assert second.returncode == 0, second.stderr[-3000:]
    log = " ".join((second.stdout + second.stderr).split())  # rich wraps long lines
    assert "Resuming from checkpoint" in log and "after epoch 1 of 3" in log
    history = pd.read_csv(project_copy / "data" / "07_model_output" / "training_history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert load_checkpoint(checkpoint)["epoch"] == 3
    # The run the kill left RUNNING was marked KILLED when the second run started.
    client = MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["KILLED", "FINISHED"]
    assert "was gone" in runs[0].data.tags[ENDED_TAG]
