"""Training on the CPU's bf16 + channels-last path: it runs, stays finite, is reproducible, and says so."""

import logging

import numpy as np
import pytest
import torch

from classwise.core import device as core_device
from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.training import TrainConfig, TrainStep, fit
from tests.unit.training.test_loop import _data, _tiny


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU that reports native bf16, so ``auto`` picks bf16 + channels-last (emulated where it is not)."""
    monkeypatch.setattr(core_device, "cpu_has_native_bf16", lambda: True)


def test_bf16_channels_last_step_runs_forward_and_backward_with_a_finite_loss(bf16_cpu, caplog):
    counts = torch.tensor([10, 10, 10])
    with caplog.at_level(logging.INFO, logger="classwise.training.step"):
        step = TrainStep(_tiny(), 3, [0.5] * 3, [0.25] * 3, torch.device("cpu"), counts)
    assert "Training on cpu: bf16 autocast, channels-last" in caplog.text and "(CPU with native bf16; auto)" in caplog.text
    assert step.amp and step.path.channels_last
    conv = next(m for m in step.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in step.model.state_dict().items()}
    xb = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    loss, logits = step(xb, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    assert logits.dtype == torch.bfloat16 and torch.isfinite(loss) and loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in step.model.parameters())  # autocast keeps fp32 master weights
    assert not torch.equal(before[next(iter(before))], step.model.state_dict()[next(iter(before))])


def test_bf16_channels_last_training_is_reproducible_for_a_seed(bf16_cpu):
    data, tr, va = _data()
    args = (data.images[tr], data.labels[tr], data.images[va], data.labels[va], 3, [0.5] * 3, [0.25] * 3)
    a = fit(*args, _tiny(epochs=1))
    b = fit(*args, _tiny(epochs=1))
    assert np.isfinite(a.history[0]["train_loss"]) and np.isfinite(a.history[0]["val_loss"])
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]


@pytest.mark.parametrize("width, layout", [(8, "channels-last"), (4, "NCHW")])
def test_cpu_without_native_bf16_trains_in_float32_channels_last_unless_the_net_is_narrow(monkeypatch, caplog,
                                                                                         width, layout):
    monkeypatch.setattr(core_device, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.INFO, logger="classwise.training.step"):
        step = TrainStep(_tiny(model_options={"width": width}), 3, [0.5] * 3, [0.25] * 3, torch.device("cpu"),
                         torch.tensor([10, 10, 10]))
    loss, logits = step(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
    assert logits.dtype == torch.float32 and not step.amp and torch.isfinite(loss)
    assert step.path.channels_last is (layout == "channels-last")
    assert f"float32, {layout}" in caplog.text and "(CPU without native bf16" in caplog.text
    assert "emulated" not in caplog.text and ("under 8 input channels" in caplog.text) == (width == 4)


class _CountingCompile:
    """Stands in for torch.compile: the model runs eagerly, and each call through the wrapper is counted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model):
        def compiled(x):
            self.calls += 1
            return model(x)
        return compiled


def test_a_compiled_step_runs_the_full_batch_compiled_and_any_other_size_eagerly(monkeypatch, caplog):
    fake = _CountingCompile()
    monkeypatch.setattr("classwise.training.step.torch.compile", fake)
    monkeypatch.setattr(core_device.shutil, "which", lambda name: "/usr/bin/g++")
    with caplog.at_level(logging.INFO, logger="classwise.training.step"):
        step = TrainStep(_tiny(compile="auto"), 3, [0.5] * 3, [0.25] * 3, torch.device("cpu"),
                         torch.tensor([10, 10, 10]), planned_steps=core_device.COMPILE_MIN_STEPS)
    assert step.compiled and "compile auto: on" in caplog.text
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for n in (8, 8, 5, 8):  # an epoch's last, smaller batch would cost a second compile
        step(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8), labels[:n])
    assert fake.calls == 3
    short = TrainStep(_tiny(compile="auto"), 3, [0.5] * 3, [0.25] * 3, torch.device("cpu"),
                      torch.tensor([10, 10, 10]), planned_steps=10)
    assert not short.compiled and short.forward is short.model


def test_a_forced_bf16_on_a_cpu_without_it_runs_after_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(core_device, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.INFO, logger="classwise.training.step"):
        step = TrainStep(_tiny(amp=True), 3, [0.5] * 3, [0.25] * 3, torch.device("cpu"), torch.tensor([10, 10, 10]))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "about 10x slower" in warnings[0].getMessage()
    loss, logits = step(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), torch.tensor([0, 1, 2, 0]))
    assert step.amp and logits.dtype == torch.bfloat16 and torch.isfinite(loss)


@pytest.mark.parametrize("value", ["auto", True, False])
def test_amp_and_channels_last_take_auto_or_a_bool(value):
    cfg = parse(TrainConfig, {"amp": value, "channels_last": value}, "train")
    assert cfg.amp == value and cfg.channels_last == value


def test_amp_refuses_other_words_naming_the_key():
    with pytest.raises(ConfigError, match="train.amp.*'auto'"):
        parse(TrainConfig, {"amp": "yes"}, "train")
