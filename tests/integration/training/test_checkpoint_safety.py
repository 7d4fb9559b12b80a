"""Checkpoints under concurrency: unique temporary files, one training per checkpoint, format checked."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from classwise.core.errors import RunError
from classwise.training import TrainConfig, fit
from classwise.training import checkpoint as ckpt
from classwise.training.checkpoint import CheckpointLock, load_checkpoint, save_checkpoint
from tests.conftest import PROJECT_ROOT, make_images


def _cfg(directory: Path, **kw) -> TrainConfig:
    base = dict(model="preact_resnet18", model_options={"width": 4}, epochs=1, batch_size=16, milestones=[],
                augment="none", device="cpu", progress=False, checkpoint_dir=str(directory))
    return TrainConfig(**{**base, **kw})


def _fit(cfg: TrainConfig):
    data = make_images([16, 16], size=16)
    return fit(data.images, data.labels, data.images[:4], data.labels[:4], 2, [0.5] * 3, [0.25] * 3, cfg)


def test_two_writers_of_one_checkpoint_never_share_a_temporary_file(tmp_path, monkeypatch):
    real_save = torch.save

    def slow_save(obj, f):  # holds each writer between its write and its rename
        real_save(obj, f)
        time.sleep(0.3)

    monkeypatch.setattr(ckpt.torch, "save", slow_save)
    path = tmp_path / "m-abc.pt"
    errors = []

    def write(epoch):
        try:
            save_checkpoint(path, {"epoch": epoch})
        except Exception as exc:  # the old fixed name: FileNotFoundError on the second rename
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(e,)) for e in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert torch.load(path, weights_only=True)["epoch"] in (1, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["m-abc.pt"]  # no temporary file left


def test_a_second_identical_training_is_refused_while_the_first_holds_the_checkpoint(tmp_path):
    _fit(_cfg(tmp_path))
    (checkpoint,) = tmp_path.glob("*.pt")
    with CheckpointLock(checkpoint):
        with pytest.raises(RunError, match=r"being written by another training of the same configuration"):
            _fit(_cfg(tmp_path, epochs=2))
    assert load_checkpoint(checkpoint)["epoch"] == 1  # untouched by the refused run
    assert _fit(_cfg(tmp_path, epochs=2)).resumed_from == 1  # the lock is gone with its holder


HOLDER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from classwise.training.checkpoint import CheckpointLock
with CheckpointLock(Path({checkpoint!r})):
    print("HOLDING", flush=True)
    sys.stdin.read()  # until the test closes it
"""


def test_a_training_in_another_process_holding_the_checkpoint_refuses_this_one(tmp_path):
    """The lock works across processes (flock), and goes with its holder however it ends."""
    _fit(_cfg(tmp_path))
    (checkpoint,) = tmp_path.glob("*.pt")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(PROJECT_ROOT), checkpoint=str(checkpoint))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        with pytest.raises(RunError, match=rf"process {holder.pid}\); wait for it to finish"):
            _fit(_cfg(tmp_path, epochs=2))
        assert load_checkpoint(checkpoint)["epoch"] == 1  # untouched by the refused run
    finally:
        holder.kill()  # as a kill -9 would: the kernel drops the lock
        holder.wait(timeout=30)
    assert _fit(_cfg(tmp_path, epochs=2)).resumed_from == 1
    assert load_checkpoint(checkpoint)["epoch"] == 2 and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("blob, shown", [({"epoch": 1}, "it holds epoch"), ([1, 2], "it holds list"),
                                         ({"format": 2, "epoch": 1}, "it holds epoch, format")])
def test_a_checkpoint_of_another_structure_is_one_sentence_not_a_key_error(tmp_path, blob, shown):
    path = tmp_path / "m.pt"
    torch.save(blob, path)
    with pytest.raises(RunError, match=f"not a format-1 Classwise checkpoint \\({shown}\\); delete it"):
        load_checkpoint(path)


def test_checkpoint_keys_match_what_the_loop_writes(tmp_path):
    _fit(_cfg(tmp_path))
    (checkpoint,) = tmp_path.glob("*.pt")
    assert set(torch.load(checkpoint, weights_only=True)) == ckpt.CHECKPOINT_KEYS | ckpt.OPTIONAL_CHECKPOINT_KEYS
    assert np.isfinite(load_checkpoint(checkpoint)["history"][0]["train_loss"])
