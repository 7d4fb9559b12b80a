"""A logged model served on 127.0.0.1 (`mlflow models serve`, or the Classwise server), started and always
stopped, with bounded waits.

For tests and benchmarks; users type the command themselves (`make serve`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from classwise.framework.local_server import HOST, free_port, stop_group, wait_until_up

log = logging.getLogger(__name__)


@contextlib.contextmanager
def served_model(
    model_uri: str,
    tracking_uri: str,
    log_path: str | os.PathLike,
    port: int | None = None,
    workers: int = 1,
    start_timeout_s: float = 240.0,
    server: str = "mlflow",
) -> Iterator[str]:
    """Serve ``model_uri`` from ``tracking_uri`` on 127.0.0.1; yield its base URL; stop it on exit.

    ``server``: "mlflow" (``mlflow models serve``) or "classwise" (``python -m classwise.serving.server``,
    what ``make serve`` runs). The server's output goes to ``log_path``; its tail is in the error when it
    does not come up.
    """
    port = port or free_port()
    # The server runs uvicorn by name, so this environment's bin folder goes first on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}
    command = {
        "mlflow": [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"],
        "classwise": [sys.executable, "-m", "classwise.serving.server", "-m", model_uri],
    }[server] + ["--host", HOST, "-p", str(port), "-w", str(workers)]
    log_path = Path(log_path)
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        wait_until_up(f"{url}/ping", proc, start_timeout_s, " ".join(command[2:4]), log_path.read_text)
        log.info("Serving %s at %s (log: %s).", model_uri, url, log_path)
        yield url
    finally:
        stop_group(proc, wait_s=30)
