"""`python -m classwise.ablation --executor ray --address <wrong>` ends in one sentence, exit 2, within the
connect timeout, before the data stage and before any MLflow run (ray.init alone waits for ever)."""

from __future__ import annotations

import signal
import socket
import time

import pytest
from click.testing import CliRunner

from classwise.ablation.executors import ray as ray_executor
from tests.conftest import copy_project
from tests.support.sessions import mlflow_state_restored

pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word: a service that is not Ray."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    import ray

    def never(*args, **kwargs):  # so that a missing check fails this test instead of hanging it
        raise AssertionError("ray.init was reached with an address no Ray cluster answers at")

    monkeypatch.setattr(ray, "init", never)
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    sigterm = signal.getsignal(signal.SIGTERM)  # the command sets its own
    yield root
    signal.signal(signal.SIGTERM, sigterm)


def _ladder(project, address: str):
    from classwise.ablation.__main__ import main

    start = time.monotonic()
    with mlflow_state_restored():
        result = CliRunner().invoke(main, ["--executor", "ray", "--address", address, "--project-path", str(project)])
    return result, time.monotonic() - start


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_a_closed_port_is_refused_at_once_before_any_run(project, address):
    result, took = _ladder(project, address)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: No Ray cluster answers at --address {address} (Connection refused); start the cluster "
        f"(ray start --head) or correct --address, or leave --address out for a local Ray.")
    assert took < 5, took
    assert not (project / "data" / "02_intermediate").exists()  # the data stage never ran
    assert not (project / "mlflow.db").exists()  # nor did any MLflow run open


def test_a_port_that_is_not_ray_is_refused_within_the_connect_timeout(project, silent_port, monkeypatch):
    monkeypatch.setattr(ray_executor, "CONNECT_TIMEOUT_S", 1.0)
    result, took = _ladder(project, f"127.0.0.1:{silent_port}")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: Something listens at --address 127.0.0.1:{silent_port}, but it did "
                                    f"not answer as a Ray cluster within 1 s;")
    assert result.output.count("\n") == 1
    assert took < 1.0 + 4, took
    assert not (project / "data" / "02_intermediate").exists() and not (project / "mlflow.db").exists()
