"""Ctrl-C and SIGTERM end the MLflow run as KILLED; runs a kill -9 left RUNNING are marked at the next start."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from classwise.framework.interrupts import ENDED_TAG, PROCESS_TAG, mark_abandoned_runs, process_identity

LONG = ",".join(["train.epochs=200", "train.model_options.width=4", "train.progress=false", "train.milestones=[]"])


def _runs(project: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    return client.search_runs([experiment.experiment_id])


def test_a_signal_during_training_ends_the_mlflow_run_as_killed(project_copy: Path):
    # SIGTERM here; SIGINT takes the same handler (tests/unit/framework/test_interrupt_handler.py) and is sent
    # end to end by the two-process Ctrl-C test (test_interrupts_data_parallel.py).
    signum = signal.SIGTERM
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=train", f"--params={LONG}"],
                           cwd=project_copy, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    checkpoints = project_copy / "data" / "06_models" / "checkpoints"
    try:
        deadline = time.monotonic() + 300
        while not list(checkpoints.glob("*.pt")):  # training is under way
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.1)
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    (tracked,) = _runs(project_copy)
    assert tracked.info.status == "KILLED", stderr[-3000:]
    assert tracked.data.tags[ENDED_TAG] == signal.Signals(signum).name
    assert tracked.data.tags[PROCESS_TAG].split("/")[1].startswith(f"{run.pid}@")  # what the next start checks


def test_a_run_whose_process_is_gone_is_marked_killed_at_the_next_start(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("classwise", artifact_location=(tmp_path / "mlruns").as_uri())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = process_identity(int(gone.stdout))
    abandoned = client.create_run(experiment, tags={PROCESS_TAG: dead})
    alive = client.create_run(experiment, tags={PROCESS_TAG: process_identity()})
    foreign = client.create_run(experiment, tags={PROCESS_TAG: "elsewhere/1@1"})
    untagged = client.create_run(experiment)

    marked = mark_abandoned_runs(client, experiment)

    assert marked == [abandoned.info.run_id]
    assert client.get_run(abandoned.info.run_id).info.status == "KILLED"
    assert "was gone" in client.get_run(abandoned.info.run_id).data.tags[ENDED_TAG]
    for run in (alive, foreign, untagged):
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
