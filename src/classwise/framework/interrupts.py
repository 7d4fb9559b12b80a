"""Interrupted runs end as KILLED in MLflow, and runs a kill -9 left RUNNING are marked at the next start.

Without this, Ctrl-C unwinds past Kedro's error hooks and MLflow's exit handler
closes the run as FINISHED, and SIGTERM ends the process before anything closes
it, so it stays RUNNING for ever.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

KILLED = "KILLED"
PROCESS_TAG = "classwise.process"  # host/pid@start-time of the process that owns the run
ENDED_TAG = "classwise.ended_by"


class RunInterrupted(KeyboardInterrupt):
    """Raised in the main thread on SIGINT or SIGTERM; a KeyboardInterrupt, so it stops any runner."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"Run interrupted by {signal.Signals(signum).name}.")


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def process_identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}@{_start_time(pid)}"


def process_gone(identity: str) -> bool:
    """True when the process named by ``identity`` (this host only) no longer runs."""
    host, _, rest = identity.partition("/")
    pid_text, _, started = rest.partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's run: we cannot tell
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return started not in ("?", "") and _start_time(pid) not in ("?", started)


def mark_abandoned_runs(client: MlflowClient, experiment_id: str, current_run_id: str | None = None) -> list[str]:
    """Set runs left RUNNING by a process that is gone (kill -9, power loss) to KILLED; their ids."""
    marked = []
    runs = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000)
    for run in runs:
        owner = run.data.tags.get(PROCESS_TAG)
        if run.info.run_id == current_run_id or not owner or not process_gone(owner):
            continue
        client.set_tag(run.info.run_id, ENDED_TAG, f"found RUNNING at a later start; its process {owner} was gone")
        client.set_terminated(run.info.run_id, KILLED)
        marked.append(run.info.run_id)
    if marked:
        log.warning("Marked %d MLflow run(s) left RUNNING by a killed process as KILLED: %s.",
                    len(marked), ", ".join(marked))
    return marked


def end_active_runs(status: str) -> None:
    """End every active MLflow run of this process (kedro-mlflow stacks the same run once a node)."""
    while mlflow.active_run() is not None:
        mlflow.end_run(status)


class InterruptHook:
    """SIGINT and SIGTERM stop the run and close its MLflow run as KILLED; stale RUNNING runs are marked.

    The signal handlers raise ``RunInterrupted`` in the main thread, which unwinds the
    runner like Ctrl-C always did; the run is closed by an exit handler registered
    after MLflow's own, so it runs first and MLflow finds nothing left to mark FINISHED.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._exit_handler = False

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self._restore()  # a second Ctrl-C acts as usual
        log.warning("%s received: stopping; the MLflow run will be marked KILLED.", signal.Signals(signum).name)
        raise RunInterrupted(signum)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _at_exit(self) -> None:
        if self.signum is None or mlflow.active_run() is None:
            return
        run_id = mlflow.active_run().info.run_id
        try:
            mlflow.set_tag(ENDED_TAG, signal.Signals(self.signum).name)
            end_active_runs(KILLED)
        except Exception as exc:  # the signal may have cut a store write short; close the run directly
            log.warning("Ending MLflow run %s through the client (%s: %s).", run_id, type(exc).__name__, exc)
            MlflowClient().set_terminated(run_id, KILLED)
        log.warning("MLflow run %s ended as KILLED.", run_id)

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self.signum = None
        self._restore()
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        if not self._exit_handler:
            atexit.register(self._at_exit)  # after mlflow's own exit handler, so it runs before it
            self._exit_handler = True

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict, pipeline: Any, catalog: Any) -> None:
        # Only while a pipeline runs: a notebook or `kedro viz` keeps its own handlers.
        self._install()
        run = mlflow.active_run()  # opened by kedro-mlflow's hook, which runs before this one
        if run is None:
            return
        mlflow.set_tag(PROCESS_TAG, process_identity())
        try:
            mark_abandoned_runs(MlflowClient(), run.info.experiment_id, run.info.run_id)
        except Exception as exc:  # marking old runs must never stop a new one
            log.warning("Could not check for runs left RUNNING (%s: %s).", type(exc).__name__, exc)

    @hook_impl
    def after_pipeline_run(self, run_params: dict, run_result: Any, pipeline: Any, catalog: Any) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline: Any, catalog: Any) -> None:
        self._restore()
