"""How a 2-process gloo training ends when it is stopped, or when a replica freezes or is killed.

``launch`` runs here; the replicas run ``all_reduce_steps`` of this module (the spawned
processes import it), a loop of collectives that reports every step to the launcher and
lets rank 1 stop or kill itself part way, so each test costs one launch and no training.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from classwise.core.errors import RunError
from classwise.training import TrainConfig, distributed

CFG = TrainConfig(model="preact_resnet18", model_options={"width": 4}, epochs=1, batch_size=4, milestones=[],
                  progress=False, nproc_per_node=2)


def all_reduce_steps(*, cfg: TrainConfig, rank_1_sends: str | None = None, on_epoch_end=None) -> str:
    """Up to 400 steps of one all_reduce; rank 0 reports each; rank 1 sends itself ``rank_1_sends`` at step 3."""
    value = torch.ones(4)
    for step in range(400):
        dist.all_reduce(value)
        if on_epoch_end is not None:
            on_epoch_end({"epoch": step + 1, "pid": os.getpid()})
        if step == 3 and dist.get_rank() == 1 and rank_1_sends:
            os.kill(os.getpid(), getattr(signal, rank_1_sends))
        time.sleep(0.02)
    return "finished"


def _replicas_left() -> list[int]:
    """This process's children that are replicas (multiprocessing's spawn), stopped ones included."""
    left = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{os.getpid()}\n" in status and b"spawn_main" in cmdline:
            left.append(int(entry.name))
    return left


class Stopped(Exception):
    pass


@pytest.fixture
def own_sigterm_handler():
    """A handler for SIGTERM as a Kedro run installs one (framework.interrupts), put back afterwards."""
    def stop(signum, frame):
        raise Stopped(signal.Signals(signum).name)

    before = signal.signal(signal.SIGTERM, stop)
    yield stop
    signal.signal(signal.SIGTERM, before)


def test_sigterm_stops_the_replicas_then_reaches_the_handler_in_place_before_the_launch(own_sigterm_handler):
    sigint_before = signal.getsignal(signal.SIGINT)
    rows = []

    def on_row(row):
        rows.append(row)
        if len(rows) == 3:  # training under way on both replicas
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Stopped, match="SIGTERM"):  # not torch's SignalException
        distributed.launch(all_reduce_steps, 2, (), {"cfg": CFG}, on_row)
    assert 3 <= len(rows) < 400
    # torch's launcher installs its own handlers; the ones from before are back.
    assert signal.getsignal(signal.SIGTERM) is own_sigterm_handler
    assert signal.getsignal(signal.SIGINT) is sigint_before
    assert _replicas_left() == []


def test_a_frozen_replica_fails_the_training_within_the_stated_time(monkeypatch):
    monkeypatch.setattr(distributed, "FROZEN_AFTER_S", 2.0)
    rows_at: list[float] = []
    # Without a watchdog the launch would wait for gloo's 30-minute timeout: end it so that the test fails.
    guard = threading.Timer(30, lambda: [os.kill(pid, signal.SIGKILL) for pid in _replicas_left()])
    guard.start()
    try:
        with pytest.raises(RunError) as raised:
            distributed.launch(all_reduce_steps, 2, (), {"cfg": CFG, "rank_1_sends": "SIGSTOP"},
                               lambda row: rows_at.append(time.monotonic()))
    finally:
        guard.cancel()
    waited = time.monotonic() - rows_at[-1]  # rank 0 blocks in its next all_reduce as rank 1 stops
    message = str(raised.value)
    assert message.startswith("Replica rank 1 (process ") and "gave no sign of life for 2 s" in message
    assert "SIGSTOP" in message and "\n" not in message
    # 2 s of silence, then up to a heartbeat and a watchdog round late, then torch's launcher reacts.
    assert waited < 2.0 + distributed.HEARTBEAT_S + 1.0 + 3.0, waited
    assert _replicas_left() == []  # the stopped replica was killed, not left behind


def test_a_killed_replica_is_named_in_one_sentence_not_as_the_others_lost_connection():
    with pytest.raises(RunError) as raised:
        distributed.launch(all_reduce_steps, 2, (), {"cfg": CFG, "rank_1_sends": "SIGKILL"}, None)
    message = str(raised.value)
    assert message.startswith("Replica rank 1 (process ") and "was killed by SIGKILL" in message
    assert "Connection" not in message and "gloo" not in message and "\n" not in message
    assert _replicas_left() == []
