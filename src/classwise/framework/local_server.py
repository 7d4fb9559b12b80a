"""A local HTTP server subprocess (`mlflow server`, `mlflow models serve`) on 127.0.0.1: a free port,
a bounded wait until it answers, and a stop that takes its worker processes with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float, what: str,
                  output: Callable[[], str] = lambda: "", poll_s: float = 0.5) -> None:
    """Return once ``url`` answers 200; raise (with the tail of ``output()``) if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it answered:\n{output()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer at {url} within {timeout_s:.0f} s:\n{output()[-3000:]}")
        time.sleep(poll_s)


def stop_group(proc: subprocess.Popen, wait_s: float = 30) -> None:
    """SIGTERM to the server's process group (it starts workers), SIGKILL after ``wait_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=wait_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=wait_s)
