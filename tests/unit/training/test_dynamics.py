"""Training dynamics: exact per-image sums from the step's own logits, mixed batches left out, no extra pass."""

import numpy as np
import pytest
import torch

from classwise.models.resnet import ResNet
from classwise.training import TrainStep, fit
from classwise.training.dynamics import TrainingDynamics
from tests.unit.training.test_resume import _cfg, _data


def test_margin_confidence_and_variability_follow_the_recorded_logits():
    dyn = TrainingDynamics(3, torch.device("cpu"))
    labels = torch.tensor([0, 1])
    dyn.record(torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 3.0]]), labels, torch.tensor([0, 2]))
    dyn.end_epoch()
    dyn.record(torch.tensor([[0.0, 1.0, 0.0]]), labels[:1], torch.tensor([0]))
    dyn.end_epoch()
    table = dyn.table()
    assert table["observations"].tolist() == [2, 0, 1]
    # image 0: margins 2 - 1 = 1 and 0 - 1 = -1; image 2 (label 1): 0 - 3 = -3
    assert table["aum"][0] == pytest.approx(0.0) and table["aum"][2] == pytest.approx(-3.0)
    assert np.isnan(table["aum"][1]) and np.isnan(table["confidence"][1])
    p = [np.exp(2) / (1 + np.exp(2) + np.exp(1)), 1 / (2 + np.e)]
    assert table["confidence"][0] == pytest.approx(np.mean(p))
    assert table["variability"][0] == pytest.approx(np.std(p))
    assert table["variability"][2] == pytest.approx(0.0, abs=1e-7)


def test_a_seed_gives_the_same_dynamics_and_they_cost_no_forward_pass(tmp_path, monkeypatch):
    args = _data()
    cfg = _cfg(tmp_path, epochs=3, checkpoint_dir=None, cutmix_p=0.0, oversample=False)
    first = fit(*args, cfg)
    steps, training_forwards = [], []
    step_call, forward = TrainStep.__call__, ResNet.forward
    monkeypatch.setattr(TrainStep, "__call__", lambda self, xb, t: steps.append(1) or step_call(self, xb, t))
    monkeypatch.setattr(ResNet, "forward", lambda self, x: training_forwards.append(self.training) or forward(self, x))
    second = fit(*args, cfg)
    n_train = len(args[1])
    steps_per_epoch = n_train // cfg.batch_size + (n_train % cfg.batch_size >= 2)
    assert len(steps) == 3 * steps_per_epoch
    assert sum(training_forwards) == len(steps)  # one training-mode forward a step: the dynamics add none
    for name, values in first.dynamics.items():
        assert np.array_equal(values, second.dynamics[name], equal_nan=True), name
    observed = n_train if n_train % cfg.batch_size >= 2 else n_train - n_train % cfg.batch_size
    assert first.dynamics["observations"].sum() == 3 * observed  # every image of every plain batch, each epoch


def test_batches_mixed_by_cutmix_are_not_recorded(tmp_path):
    every = fit(*_data(), _cfg(tmp_path, epochs=1, checkpoint_dir=None, cutmix_p=1.0))
    assert every.dynamics["observations"].sum() == 0
    assert np.isnan(every.dynamics["aum"]).all()
