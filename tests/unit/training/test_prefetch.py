"""The next batch prepared on a background thread during the step: same batches, same weights, clean exits."""

import threading

import numpy as np
import pytest
import torch

from classwise.training import TrainConfig, fit
from classwise.training.batches import DeviceBatches, prefetched
from tests.unit.training.test_resume import _cfg, _data


def _batches(seed: int = 0) -> DeviceBatches:
    images = torch.randint(0, 256, (70, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(70) % 3
    return DeviceBatches(images, labels, 3, 16, "seed_heavy", True, 0.5, 1.0,
                         torch.Generator().manual_seed(seed), np.random.default_rng(seed))


def test_prefetched_batches_and_the_random_state_after_the_epoch_equal_the_plain_loops():
    plain, ahead = _batches(), _batches()
    for epoch in range(2):
        a, b = list(plain.epoch()), list(prefetched(ahead.epoch()))
        assert len(a) == len(b) == len(plain)
        for (xa, ta, ya, ra), (xb, tb, yb, rb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ta, tb) and torch.equal(ya, yb)
            assert (ra is None and rb is None) or torch.equal(ra, rb)
    assert torch.equal(plain.generator.get_state(), ahead.generator.get_state())
    assert plain.host_rng.bit_generator.state == ahead.host_rng.bit_generator.state


def test_an_error_while_preparing_a_batch_is_raised_in_the_training_thread():
    def broken():
        yield 1
        raise ValueError("decoding failed at batch 2")

    got = []
    with pytest.raises(ValueError, match="batch 2"):
        for item in prefetched(broken()):
            got.append(item)
    assert got == [1]


def test_leaving_the_loop_early_stops_the_batch_thread():
    before = threading.active_count()
    source = prefetched(iter(range(1000)))
    assert next(source) == 0
    source.close()  # what a `for` loop does when the step raises or Ctrl-C arrives
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name == "classwise-batches"]


def test_a_seed_gives_the_same_weights_with_and_without_prefetch(tmp_path):
    args = _data()
    on = fit(*args, _cfg(tmp_path, epochs=2, checkpoint_dir=None, prefetch=True))
    off = fit(*args, _cfg(tmp_path, epochs=2, checkpoint_dir=None, prefetch=False))
    for key in on.last_state:
        assert torch.equal(on.last_state[key], off.last_state[key]), key
    assert [r["train_loss"] for r in on.history] == [r["train_loss"] for r in off.history]
    for name, values in on.dynamics.items():
        assert np.array_equal(values, off.dynamics[name], equal_nan=True), name


@pytest.mark.parametrize("value", ["auto", True, False])
def test_prefetch_takes_auto_or_a_bool(value):
    assert TrainConfig(prefetch=value).prefetch == value
