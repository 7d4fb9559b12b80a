"""`kedro run --params=train.nproc_per_node=2`: one command, one MLflow run, 2 gloo processes; killed
with SIGKILL in epoch 2, the rerun resumes from rank 0's checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from classwise.training.checkpoint import load_checkpoint

TINY = ",".join([
    "train.nproc_per_node=2", "train.epochs=2", "train.model_options.width=4", "train.milestones=[1]",
    "train.progress=false",
])


def _env() -> dict:
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1"}


def test_two_process_kedro_run_checkpoints_and_resumes_after_a_kill(project_copy: Path):
    command = [sys.executable, "-m", "kedro", "run", "--pipelines=train", f"--params={TINY}"]
    checkpoints = project_copy / "data" / "06_models" / "checkpoints"
    first = subprocess.Popen(command, cwd=project_copy, env=_env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 400
        while not list(checkpoints.glob("*.pt")):  # rank 0 writes it atomically at the end of epoch 1
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 400 s"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # the launching process only: its replicas must not outlive it
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.stderr.close()
    (checkpoint,) = checkpoints.glob("*.pt")
    assert load_checkpoint(checkpoint)["epoch"] == 1

    # The rerun takes the checkpoint's lock: an orphaned replica still holding it would refuse it.
    second = subprocess.run(command, cwd=project_copy, env=_env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=600)
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
    assert [m.step for m in client.get_metric_history(finished.info.run_id, "val_accuracy")] == [1, 2]
