"""`mlflow models serve` of a logged model on 127.0.0.1, started and always stopped, with bounded waits.

For tests and benchmarks; users type the command themselves (`make serve`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, wait_s: float) -> None:
    """SIGTERM to the server's process group (it starts uvicorn workers), SIGKILL after ``wait_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=wait_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=wait_s)


@contextlib.contextmanager
def served_model(
    model_uri: str,
    tracking_uri: str,
    log_path: str | os.PathLike,
    port: int | None = None,
    workers: int = 1,
    start_timeout_s: float = 240.0,
) -> Iterator[str]:
    """Serve ``model_uri`` from ``tracking_uri`` on 127.0.0.1; yield its base URL; stop it on exit.

    The server's output goes to ``log_path``; its tail is in the error when it does not come up.
    """
    port = port or free_port()
    # The server runs uvicorn by name, so this environment's bin folder goes first on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
               "--host", HOST, "-p", str(port), "-w", str(workers)]
    log_path = Path(log_path)
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow models serve did not answer within {start_timeout_s:.0f} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(1)
        log.info("Serving %s at %s (log: %s).", model_uri, url, log_path)
        yield url
    finally:
        _stop(proc, wait_s=30)
