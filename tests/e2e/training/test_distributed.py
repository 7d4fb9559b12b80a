"""Data-parallel training on the CPU: 2 gloo processes started by torch's elastic launcher.

The replicas run functions of this module (the spawned processes import it), which wrap
``fit`` to look inside: the weights of both ranks after every step, or the weights after
one step of a network without BatchNorm.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from classwise.core.errors import RunError
from classwise.core.errors import ConfigError
from classwise.models.registry import available_models, register
from classwise.training import TrainConfig, distributed, fit
from classwise.training import loop

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def plain_cnn(num_classes: int, width: int = 4) -> nn.Module:
    """No BatchNorm (gloo has no SyncBatchNorm), so 2 x 32 images can equal 1 x 64 exactly."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(width * 16, num_classes))


if "plain_cnn" not in available_models():
    register("plain_cnn", plain_cnn)


def _images(n: int, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 60, (n, 32, 32, 3), dtype=np.uint8)
    for c in range(classes):  # a bright patch a class, so the loss moves
        images[labels == c, c * 6 : c * 6 + 8, c * 6 : c * 6 + 8] += 150
    return images, labels


def fit_recording_weights(*args, **kwargs):
    """``fit`` in a replica, recording after every step the largest parameter difference between the ranks."""
    differences: list[float] = []
    original = loop.TrainStep.__call__

    def step_and_compare(self, xb, target):
        out = original(self, xb, target)
        # Parameters; BatchNorm's running statistics are rank 0's, broadcast before each forward pass.
        flat = torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        differences.append(max((g - gathered[0]).abs().max().item() for g in gathered))
        return out

    loop.TrainStep.__call__ = step_and_compare
    try:
        return fit(*args, **kwargs), differences, dist.get_world_size()
    finally:
        loop.TrainStep.__call__ = original


def fit_here(*args, **kwargs):
    """``fit``, from this module: the replica imports it, and with it the ``plain_cnn`` registration."""
    return fit(*args, **kwargs)


def _cfg(**overrides) -> TrainConfig:
    base = dict(model="preact_resnet18", model_options={"width": 4}, epochs=2, batch_size=32, milestones=[],
                oversample=False, augment="crop_flip", cutmix_p=0.5, progress=False, nproc_per_node=2)
    return TrainConfig(**{**base, **overrides})


def test_both_ranks_hold_identical_weights_after_every_step():
    x, y = _images(96)
    cfg = _cfg()
    rows: list[dict] = []
    result, differences, world = distributed.launch(
        fit_recording_weights, 2, (x, y, x[:16], y[:16], 4, MEAN, STD), {"cfg": cfg}, rows.append)
    assert world == 2
    assert len(differences) == 2 * 3  # 2 epochs of 96 / 32 steps
    assert max(differences) == 0.0
    assert [r["epoch"] for r in rows] == [1, 2]  # rank 0's rows reached this process, once each
    assert [r["epoch"] for r in result.history] == [1, 2] and result.best_state


def test_one_step_of_two_by_32_images_equals_one_process_with_the_64():
    x, y = _images(64)
    # One step: 64 images, a batch of 64; augmentation and CutMix are drawn alike by design. float32 on every
    # CPU: under bf16 autocast (auto on a CPU with native bf16) two half-batches round differently from one.
    same = dict(model="plain_cnn", model_options={}, epochs=1, batch_size=64, momentum=0.0, weight_decay=0.0,
                amp=False, channels_last=False)
    two = distributed.launch(fit_here, 2, (x, y, x[:8], y[:8], 4, MEAN, STD), {"cfg": _cfg(**same)}, None)
    one = fit(x, y, x[:8], y[:8], 4, MEAN, STD, _cfg(**same, nproc_per_node=1))
    torch.manual_seed(0)  # fit seeds torch with train.seed = 0 right before it builds the network
    start = plain_cnn(4).state_dict()
    moved = max((one.best_state[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-4  # the step changed the weights, so equality below means something
    for key, weight in one.best_state.items():
        torch.testing.assert_close(two.best_state[key], weight, rtol=1e-5, atol=1e-6)


def test_a_replica_error_is_raised_as_it_was_raised():
    x, y = _images(64)
    cfg = _cfg(epochs=1, lr=float("inf"))  # the second step's loss is not finite
    with pytest.raises(RunError, match="Training loss became"):
        distributed.launch(fit, 2, (x, y, x[:8], y[:8], 4, MEAN, STD), {"cfg": cfg}, None)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"batch_size": 33}, "'train.batch_size' is 33, which does not split into 2 equal slices"),
    ({"batch_size": 2}, "'train.batch_size' is 2, which does not split into 2 equal slices"),
    ({"device": "cuda:1"}, "'train.device' is 'cuda:1', but train.nproc_per_node = 2"),
    ({"nproc_per_node": 0}, "'train.nproc_per_node' is 0; it must be 1 or more"),
])
def test_a_train_block_that_cannot_be_split_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _cfg(**overrides)
