"""The speed path (bf16 autocast, channels-last) is chosen in one place, for training and prediction alike."""

import logging

import numpy as np
import pytest
import torch

from classwise.core import device as core_device
from classwise.core.device import cpu_has_native_bf16, predict_proba, speed_path
from classwise.models import build_model

CPU = torch.device("cpu")


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU has (True) or lacks (False) native bf16."""
    def set_to(value: bool) -> None:
        monkeypatch.setattr(core_device, "cpu_has_native_bf16", lambda: value)
    return set_to


def test_auto_turns_bf16_and_channels_last_on_for_a_cpu_with_native_bf16(native_bf16):
    native_bf16(True)
    path = speed_path(CPU)
    assert (path.amp, path.channels_last) == (True, True)
    assert "native bf16" in path.describe() and "bf16 autocast, channels-last" in path.describe()


def test_auto_runs_float32_channels_last_on_a_cpu_without_native_bf16(native_bf16):
    native_bf16(False)
    path = speed_path(CPU, model=build_model("preact_resnet18", 5, width=8))
    assert (path.amp, path.channels_last) == (False, True)
    assert "float32, channels-last" in path.describe() and "without native bf16" in path.describe()


def test_auto_keeps_a_float32_network_with_a_narrow_convolution_in_nchw(native_bf16):
    native_bf16(False)
    narrow = build_model("preact_resnet18", 5, width=4)
    path = speed_path(CPU, model=narrow)
    assert (path.amp, path.channels_last) == (False, False)
    assert "NCHW because" in path.reason and "under 8 input channels" in path.reason
    assert core_device.narrow_convs(narrow)[0] in path.reason  # the convolution is named
    assert core_device.narrow_convs(build_model("preact_resnet18", 5, width=8)) == []  # the stem's 3 channels pass
    native_bf16(True)  # the bf16 path was not seen to hang: a CPU with native bf16 keeps channels-last
    assert speed_path(CPU, model=narrow).channels_last is True


def test_an_explicit_channels_last_on_a_narrow_float32_network_warns_once_and_runs_it(native_bf16, caplog):
    native_bf16(False)
    with caplog.at_level(logging.WARNING, logger="classwise.core.device"):
        path = speed_path(CPU, channels_last=True, model=build_model("preact_resnet18", 5, width=4))
    assert path.channels_last is True
    assert len(caplog.records) == 1 and "channels_last: auto" in caplog.records[0].getMessage()


@pytest.mark.parametrize("asked, device, steps, compiler, expected", [
    ("auto", "cpu", 5000, "/usr/bin/g++", True),
    ("auto", "cpu", 1999, "/usr/bin/g++", False),  # too short to repay the compile
    ("auto", "cpu", 5000, None, False),  # inductor needs a C++ compiler
    ("auto", "cuda", 50000, "/usr/bin/g++", False),  # not measured on CUDA: asked for explicitly
    (True, "cpu", 10, None, True),
    (False, "cpu", 50000, "/usr/bin/g++", False),
])
def test_compile_auto_compiles_a_long_cpu_run_only(monkeypatch, asked, device, steps, compiler, expected):
    monkeypatch.setattr(core_device.shutil, "which", lambda name: compiler)
    chosen, why = core_device.compile_choice(torch.device(device), asked, steps)
    assert chosen is expected
    assert ("auto" in why) == (asked == "auto")
    if asked == "auto" and device == "cpu" and compiler and not expected:
        assert f"{steps} steps are under {core_device.COMPILE_MIN_STEPS}" in why


@pytest.mark.parametrize("cores, threads, expected", [(2, 2, False), (8, 4, True), (1, 1, False)])
def test_auto_prefetches_where_a_core_is_left_for_the_batch_thread(monkeypatch, cores, threads, expected):
    monkeypatch.setattr(core_device.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(core_device.torch, "get_num_threads", lambda: threads)
    assert speed_path(CPU).prefetch is expected
    assert speed_path(torch.device("cuda")).prefetch is True
    assert speed_path(CPU, prefetch=True).prefetch is True and speed_path(CPU, prefetch=False).prefetch is False


def test_auto_is_on_for_cuda_whatever_the_cpu(native_bf16):
    native_bf16(False)
    path = speed_path(torch.device("cuda"))
    assert (path.amp, path.channels_last) == (True, True) and "CUDA" in path.reason


@pytest.mark.parametrize("native", [True, False])
def test_an_explicit_setting_wins_over_auto(native_bf16, native):
    native_bf16(native)
    off = speed_path(CPU, amp=False, channels_last=False)
    assert (off.amp, off.channels_last) == (False, False)
    forced = speed_path(CPU, True, "auto")
    assert forced.amp and forced.channels_last
    assert ("emulated" in forced.reason) != native  # a forced bf16 on a CPU without it is called slow


@pytest.mark.parametrize("flags, expected", [((True, False), True), ((False, True), True), ((False, False), False)])
def test_native_bf16_means_avx512_bf16_or_amx_on_x86(monkeypatch, flags, expected):
    monkeypatch.setattr(core_device.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: flags[0], raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: flags[1], raising=False)
    assert cpu_has_native_bf16() is expected


def test_predict_proba_on_the_bf16_channels_last_path_agrees_with_float32(native_bf16, caplog):
    native_bf16(True)
    torch.manual_seed(0)
    model = build_model("preact_resnet18", 5, width=4)
    images = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    with caplog.at_level(logging.DEBUG, logger="classwise.core.device"):
        fast = predict_proba(model, images, [0.5] * 3, [0.25] * 3, device="cpu", batch_size=8)
    assert "bf16 autocast, channels-last" in caplog.text
    exact = predict_proba(model, images, [0.5] * 3, [0.25] * 3, device="cpu", batch_size=8, amp=False,
                          channels_last=False)
    assert fast.dtype == np.float32 and np.isfinite(fast).all()
    np.testing.assert_allclose(fast.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(fast, exact, atol=0.05)  # bf16 keeps ~3 significant digits


def test_evaluate_takes_the_same_switches_as_train():
    from classwise.core.config import ConfigError, parse
    from classwise.evaluation.config import EvaluateConfig

    cfg = parse(EvaluateConfig, {"amp": False, "channels_last": "auto"}, "evaluate")
    assert (cfg.amp, cfg.channels_last) == (False, "auto")
    with pytest.raises(ConfigError, match="evaluate.amp"):
        parse(EvaluateConfig, {"amp": "fast"}, "evaluate")


def test_cpu_training_asks_glibc_to_keep_freed_memory_for_the_next_step(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(core_device.platform, "system", lambda: "Linux")
    monkeypatch.setattr(core_device.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(core_device.ctypes, "CDLL", lambda name: FakeLibc())
    assert core_device.retain_freed_memory() is True
    assert calls == [(-3, 32 << 20), (-1, 1 << 30)]  # M_MMAP_THRESHOLD 32 MB, M_TRIM_THRESHOLD 1 GB
    monkeypatch.setattr(core_device.platform, "libc_ver", lambda: ("", ""))  # musl, macOS, Windows: untouched
    calls.clear()
    assert core_device.retain_freed_memory() is False and calls == []
