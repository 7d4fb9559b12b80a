"""Checkpoints: an interrupted run resumes to the same weights; a changed config does not resume."""

import logging

import numpy as np
import pytest
import torch

from classwise.data.split import SplitConfig, split_table, subset_index
from classwise.training import TrainConfig, fit
from classwise.training.checkpoint import load_checkpoint
from tests.conftest import make_images


class Killed(Exception):
    pass


def _data():
    data = make_images([40, 12, 25], size=16)
    split = split_table(data, SplitConfig(val_per_class=4, test_per_class=4))
    tr, va = subset_index(data, split, "train"), subset_index(data, split, "val")
    return (data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3, [0.5] * 3, [0.25] * 3)


def _cfg(tmp_path, **kw):
    # Every random stream the loop has: oversampling, heavy augmentation, CutMix, dropout-free SE net.
    base = dict(model="preact_se_wrn_28_10", model_options={"depth": 10, "widen": 1, "width": 4}, epochs=4,
                batch_size=16, lr=0.05, milestones=[2], label_smoothing=0.1, oversample=True, cutmix_p=0.5,
                augment="seed_heavy", device="cpu", progress=False, checkpoint_dir=str(tmp_path / "ckpt"),
                prefetch=True)  # resume stays exact with the next batch prepared on the batch thread
    return TrainConfig(**{**base, **kw})


def _kill_after(epoch: int):
    def hook(row):
        if row["epoch"] == epoch:
            raise Killed
    return hook


def test_resume_after_interruption_gives_the_same_weights_and_each_epoch_once(tmp_path, caplog):
    args = _data()
    straight = fit(*args, _cfg(tmp_path, checkpoint_dir=str(tmp_path / "straight")))

    with pytest.raises(Killed):
        fit(*args, _cfg(tmp_path), on_epoch_end=_kill_after(2))
    seen = []
    with caplog.at_level(logging.INFO, logger="classwise.training"):
        resumed = fit(*args, _cfg(tmp_path), on_epoch_end=seen.append)
    assert "Resuming from checkpoint" in caplog.text and "after epoch 2 of 4" in caplog.text
    assert resumed.resumed_from == 2
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert [r["epoch"] for r in seen] == [1, 2, 3, 4]  # restored rows replayed once for a fresh tracker
    (straight_file,) = (tmp_path / "straight").glob("*.pt")
    (resumed_file,) = (tmp_path / "ckpt").glob("*.pt")
    last_straight, last_resumed = load_checkpoint(straight_file)["model"], load_checkpoint(resumed_file)["model"]
    for key in last_straight:
        assert torch.equal(last_straight[key], last_resumed[key]), key
    assert straight.best_epoch == resumed.best_epoch
    for key in straight.best_state:
        assert torch.equal(straight.best_state[key], resumed.best_state[key]), key
    for a, b in zip(straight.history, resumed.history):
        assert a["train_loss"] == b["train_loss"] and a["val_accuracy"] == b["val_accuracy"]
    for name, values in straight.dynamics.items():  # the training dynamics carry on through the checkpoint
        assert np.array_equal(values, resumed.dynamics[name], equal_nan=True), name
    assert straight.dynamics["observations"].sum() > 0


def test_a_finished_checkpoint_is_reused_and_more_epochs_continue_it(tmp_path):
    args = _data()
    first = fit(*args, _cfg(tmp_path, epochs=2))
    again = fit(*args, _cfg(tmp_path, epochs=2))
    assert again.resumed_from == 2 and again.history == first.history
    longer = fit(*args, _cfg(tmp_path, epochs=3))
    assert [r["epoch"] for r in longer.history] == [1, 2, 3] and longer.resumed_from == 2


def test_fewer_epochs_than_the_checkpoint_holds_train_beside_it_and_keep_it(tmp_path, caplog):
    args = _data()
    fit(*args, _cfg(tmp_path, epochs=3))
    (long_file,) = (tmp_path / "ckpt").glob("*.pt")
    long_bytes = long_file.read_bytes()
    with caplog.at_level(logging.INFO, logger="classwise.training"):
        short = fit(*args, _cfg(tmp_path, epochs=2))
    assert short.resumed_from == 0 and [r["epoch"] for r in short.history] == [1, 2]
    assert "holds 3 epochs, more than train.epochs = 2: it is kept" in caplog.text
    assert long_file.read_bytes() == long_bytes  # the longer training is untouched
    short_file = long_file.with_name(f"{long_file.stem}-2ep.pt")
    assert load_checkpoint(short_file)["epoch"] == 2
    assert fit(*args, _cfg(tmp_path, epochs=2)).resumed_from == 2  # and the short one is reused next time


def test_a_changed_config_starts_fresh_and_says_so(tmp_path, caplog):
    args = _data()
    with pytest.raises(Killed):
        fit(*args, _cfg(tmp_path), on_epoch_end=_kill_after(1))
    with caplog.at_level(logging.INFO, logger="classwise.training"):
        changed = fit(*args, _cfg(tmp_path, lr=0.02, epochs=1))
    assert changed.resumed_from == 0
    assert "No checkpoint for this configuration and data" in caplog.text and "only for others" in caplog.text
    files = sorted((tmp_path / "ckpt").glob("*.pt"))
    assert len(files) == 2  # the other configuration's checkpoint is left alone
    fresh = fit(*args, _cfg(tmp_path, lr=0.02, epochs=1, resume=False))
    assert fresh.resumed_from == 0


def test_checkpoint_loads_with_weights_only_and_holds_the_run_state(tmp_path):
    args = _data()
    fit(*args, _cfg(tmp_path, epochs=1))
    (path,) = (tmp_path / "ckpt").glob("*.pt")
    blob = load_checkpoint(path)  # torch.load(weights_only=True) inside
    assert blob["epoch"] == 1 and len(blob["history"]) == 1
    assert {"model", "optimizer", "best", "rng", "config"} <= set(blob)
    assert {"python", "numpy_global", "numpy_host", "torch", "cuda", "generator"} <= set(blob["rng"])
    assert not list((tmp_path / "ckpt").glob("*.tmp"))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="Cannot read the checkpoint.*set train.resume to false"):
        fit(*args, _cfg(tmp_path, epochs=1))


def test_fingerprint_follows_training_config_and_data_not_run_length():
    import numpy as np

    from classwise.training.checkpoint import fingerprint

    labels = np.arange(6)
    base = fingerprint({"lr": 0.1, "epochs": 4, "progress": True}, labels)
    assert fingerprint({"lr": 0.1, "epochs": 9, "progress": False}, labels) == base
    assert fingerprint({"lr": 0.2, "epochs": 4, "progress": True}, labels) != base
    assert fingerprint({"lr": 0.1, "epochs": 4, "progress": True}, labels[::-1]) != base
    assert fingerprint({"lr": 0.1}, np.zeros((0, 4, 4, 3), np.uint8)) != fingerprint({"lr": 0.1})
