"""The ladder's steps as Ray tasks, in parallel up to the cluster's capacity.

The driver runs the shared data stages once, ships the files the steps read
(``dataset``, ``split``, ``normalization_stats``) through Ray's object store, and
creates each step's MLflow run under the parent in ladder order. Each task runs its
step in a folder of its own (a copy of ``conf`` with its own ``data``), so that
parallel steps never write the same file, and logs to an MLflow tracking server:
a worker on another machine cannot write the driver's SQLite file. Without
``--tracking-uri`` a server is started for the ladder on 127.0.0.1 over the
project's ``mlflow.db`` and stopped at the end.

Ray is reached first (``ray_connection``), before the data stage and before any MLflow
run: a wrong ``--address`` is refused within ``CONNECT_TIMEOUT_S``, where ``ray.init``
alone waits for ever on a GCS address and retries for half a minute on a ``ray://`` one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from classwise.core.errors import ConfigError, RunError
from classwise.framework.local_server import free_port, stop_group, wait_until_up
from classwise.framework.project_paths import TRACKING_URI_ENV
from classwise.ablation.ladder import AblationConfig, Step
from classwise.ablation.step import (
    FAILED,
    STEP_FOLDER,
    execute_step,
    one_line,
    record_step,
    step_folder,
    step_input_files,
    step_tags,
)
from classwise.ablation.summary import StepOutcome

log = logging.getLogger(__name__)

# How long a Ray cluster has to answer at --address. A cluster that is up answers in milliseconds (a
# gRPC handshake, also across a network); this leaves room for a slow link and a busy head node.
CONNECT_TIMEOUT_S = 10.0
_RETRY = "start the cluster (ray start --head) or correct --address, or leave --address out for a local Ray"


@dataclass
class RayOptions:
    address: str | None = None  # None: a local Ray for this ladder; 'auto' or ray://host:10001: a running cluster
    tracking_uri: str | None = None  # an MLflow server every worker reaches; None: one on 127.0.0.1 for the ladder
    num_cpus: int | None = None  # CPUs of the local Ray (default: all); ignored for a running cluster
    cpus_per_step: float = 1.0  # CPUs each step asks for
    gpus_per_step: float | None = None  # GPUs each step asks for; None: 1 when the cluster has GPUs, else 0
    object_store_mb: int = 256  # object store of the local Ray (it holds the shipped data files)


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, which is not installed; install the extra with pip install -e '.[ray]' "
            "or run the ladder with --executor local."
        ) from None
    return ray


def check_ray_address(address: str) -> None:
    """Refuse, within ``CONNECT_TIMEOUT_S``, an ``--address`` where no Ray cluster answers.

    Ray's GCS and its Ray Client server both speak gRPC, so a cluster that is up completes a
    TCP connection and then a gRPC handshake; a closed port, an unknown host or something
    else listening fails one of the two. ``auto`` is left to Ray, which fails at once when it
    finds no cluster.
    """
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address is '{address}'; give host:port (a cluster's GCS), ray://host:port (its Ray "
                          f"Client server) or auto, or leave it out to run a local Ray for the ladder.")
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RunError(f"No Ray cluster answers at --address {address} ({why}); {_RETRY}.") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS cluster does not complete a plain handshake; the TCP answer has to do
    import grpc  # Ray's own dependency

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=max(deadline - time.monotonic(), 0.1))
    except grpc.FutureTimeoutError:
        raise RunError(f"Something listens at --address {address}, but it did not answer as a Ray cluster within "
                       f"{CONNECT_TIMEOUT_S:.0f} s; {_RETRY}.") from None
    finally:
        channel.close()


@contextlib.contextmanager
def ray_connection(options: RayOptions, project_path: Path) -> Iterator[Any]:
    """Ray, connected to ``options.address`` (or started here) for as long as the block runs.

    A Ray this process already initialised (a notebook's) is used as it is and left running.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    local = options.address is None
    if not local:
        check_ray_address(options.address)
    try:
        ray.init(
            address=options.address, include_dashboard=False, log_to_driver=True,
            num_cpus=options.num_cpus if local else None,
            object_store_memory=options.object_store_mb * 2**20 if local else None,
            # A remote cluster gets the project's code and conf; its data and stores stay here.
            runtime_env=None if local else {"working_dir": str(project_path),
                                            "excludes": ["data/", "mlflow.db", "mlruns/", "mlartifacts/", ".venv/",
                                                         ".git/"]},
        )
    except ConnectionError as exc:  # 'auto' with no cluster running, a cluster that went away meanwhile
        why = str(exc).strip().split(". ")[0].rstrip(".")  # Ray's first sentence; the rest is its own advice
        raise RunError(f"Could not connect to Ray at --address {options.address} ({why}); {_RETRY}.") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def tracking_server(project_path: Path, uri: str | None, wait_s: float = 120.0) -> Iterator[str]:
    """``uri`` as it is, or a local ``mlflow server`` over the project's mlflow.db for as long as the block runs."""
    if uri:
        yield uri
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
               f"sqlite:///{(project_path / 'mlflow.db').as_posix()}", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1",
               # Bound to 127.0.0.1, it serves only this machine: artifacts go straight to files under the
               # project, as a `kedro run`'s do, and a client on the SQLite file reads them too.
               "--default-artifact-root", (project_path / "mlruns").as_uri(), "--no-serve-artifacts"]
    log.info("Starting an MLflow tracking server for the ladder at %s (sqlite: %s).", url, project_path / "mlflow.db")
    server = subprocess.Popen(command, cwd=project_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)  # its workers stop with its group
    try:
        wait_until_up(f"{url}/health", server, wait_s, "The MLflow tracking server",
                      lambda: server.stderr.read().decode(errors="replace") if server.poll() is not None else "")
        yield url
    finally:
        stop_group(server, wait_s=20)
        server.stderr.close()


@contextlib.contextmanager
def tracking_uri_for_sessions(uri: str) -> Iterator[None]:
    """Every Kedro session of this process (and its Ray workers) logs to ``uri`` (classwise.framework.project_paths)."""
    before = os.environ.get(TRACKING_URI_ENV)
    os.environ[TRACKING_URI_ENV] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = before


def _ray_step(step: Step, params: dict[str, Any], overrides: dict[str, Any], cfg: AblationConfig,
              project_path: str, env: str | None, files: dict[str, bytes], run_id: str, tracking_uri: str,
              step_dir: str) -> StepOutcome:
    """A Ray task: one step in its own folder, inside the run the driver created for it."""
    from kedro.framework.startup import bootstrap_project

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ[TRACKING_URI_ENV] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    project = Path(project_path if Path(project_path).is_dir() else os.getcwd())
    try:
        bootstrap_project(project)
        folder = step_folder(project, Path(step_dir) if Path(step_dir).is_absolute() else project / step_dir,
                              files)
    except Exception as exc:
        return StepOutcome(step.name, step.changes, FAILED, 0.0, run_id, error=one_line(exc))
    mlflow.start_run(run_id=run_id)
    outcome = execute_step(step, params, overrides, cfg, folder, env, run_id)
    while mlflow.active_run() is not None:  # kedro-mlflow re-enters the run once a node
        mlflow.end_run(outcome.status)
    return outcome


def _gpus_per_step(ray: Any, options: RayOptions) -> float:
    if options.gpus_per_step is not None:
        return options.gpus_per_step
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def run_steps_on_ray(options: RayOptions, context: Any, steps: Sequence[Step], step_params: Sequence[dict],
                     step_overrides: Sequence[dict], cfg: AblationConfig, project_path: Path, env: str | None,
                     tags: dict[str, str], parent_run_id: str, ablation_id: str,
                     outcomes: list[StepOutcome]) -> list[StepOutcome]:
    """Run ``steps`` as Ray tasks (Ray connected by ``ray_connection``); append their outcomes to ``outcomes``
    in ladder order, each run ended with its status, and return it.

    Interrupted, the steps that had finished are recorded too, so the summary can show them.
    """
    ray = require_ray()
    tracking_uri = os.environ[TRACKING_URI_ENV]
    files = step_input_files(context, cfg.step_pipeline, cfg.step_from_nodes)
    pending: list[tuple[Step, str, Any]] = []  # (step, its run id, its Ray task), filled as tasks are sent
    try:
        gpus = _gpus_per_step(ray, options)
        log.info("Ray: %s; each step asks for %g CPU(s) and %g GPU(s); steps log to %s.",
                 ray.cluster_resources(), options.cpus_per_step, gpus, tracking_uri)
        files_ref = ray.put(files)
        task = ray.remote(_ray_step).options(
            num_cpus=options.cpus_per_step, num_gpus=gpus, max_retries=0,
            runtime_env={"env_vars": {TRACKING_URI_ENV: tracking_uri}},
        )
        client = mlflow.MlflowClient()
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        for step, params, overrides in zip(steps, step_params, step_overrides):
            run = client.create_run(experiment_id, run_name=step.name,
                                    tags={**step_tags(step, tags), "mlflow.parentRunId": parent_run_id})
            folder = (STEP_FOLDER / ablation_id / step.name).as_posix()
            log.info("Ablation step '%s' (%s) sent to Ray: %s", step.name, run.info.run_id, step.changes)
            pending.append((step, run.info.run_id, task.remote(step, params, overrides, cfg, str(project_path), env,
                                                                files_ref, run.info.run_id, tracking_uri, folder)))
        for step, run_id, ref in pending:
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # the task itself died (a worker lost, out of memory)
                outcome = StepOutcome(step.name, step.changes, FAILED, 0.0, run_id, error=one_line(exc))
                log.error("Ablation step '%s' FAILED on Ray: %s", step.name, outcome.error)
            outcomes.append(record_step(outcome))
        return outcomes
    except BaseException as exc:  # interrupted: stop the tasks, and end their runs as the sequential runner does
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else FAILED
        recorded = {o.run_id for o in outcomes}
        for step, run_id, ref in pending:
            if run_id in recorded:
                continue
            with contextlib.suppress(Exception):
                if ray.wait([ref], timeout=0)[0]:  # finished meanwhile: nothing is lost
                    outcomes.append(record_step(ray.get(ref)))
                    continue
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):
                if mlflow.MlflowClient().get_run(run_id).info.status == "RUNNING":
                    mlflow.MlflowClient().set_terminated(run_id, status)
        raise
