"""Ctrl-C during a 2-process training (train.nproc_per_node=2) ends the MLflow run KILLED, as in one process.

Ctrl-C in a terminal signals the whole process group: the launching `kedro run` and both
replicas. torch's launcher used to answer with its own SignalException and a FAILED run.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from classwise.framework.interrupts import ENDED_TAG

LONG_DDP = ",".join(["train.nproc_per_node=2", "train.device=cpu", "train.epochs=200", "train.model_options.width=4",
                     "train.progress=false", "train.milestones=[]"])


def _group_gone(pgid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_of_a_two_process_training_ends_the_mlflow_run_killed(project_copy: Path):
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}
    log_file = project_copy / "output.txt"
    with log_file.open("w") as output:  # Kedro's log goes to stdout, tracebacks to stderr
        run = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines=train", f"--params={LONG_DDP}"],
                               cwd=project_copy, env=env, stdin=subprocess.DEVNULL, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)  # a group of its own, as a terminal gives
    try:
        deadline = time.monotonic() + 120
        # Rank 0 logs this (through the launcher) once both replicas have joined the process group.
        while "Training on cpu" not in log_file.read_text():
            assert run.poll() is None, log_file.read_text()[-3000:]
            assert time.monotonic() < deadline, "the replicas did not start within 120 s"
            time.sleep(0.1)
        os.killpg(run.pid, signal.SIGINT)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    output = log_file.read_text()
    assert run.returncode != 0
    client = MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    (tracked,) = client.search_runs([client.get_experiment_by_name("classwise").experiment_id])
    assert tracked.info.status == "KILLED", output[-3000:]
    assert tracked.data.tags[ENDED_TAG] == "SIGINT"
    assert "SignalException" not in output and "Traceback" not in output, output[-3000:]
    assert _group_gone(run.pid, within_s=10), "a replica outlived the run"
