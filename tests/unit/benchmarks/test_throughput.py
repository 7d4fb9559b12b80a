"""The training benchmark runs at a tiny size on the CPU and writes its JSON (no timing asserted)."""

import json

import pytest
import torch

from tests.conftest import PROJECT_ROOT, load_script
from classwise.core.device import speed_path
from classwise.models import build_model

THROUGHPUT_PATH = PROJECT_ROOT / "benchmarks" / "throughput.py"
THROUGHPUT = load_script(THROUGHPUT_PATH)
main, seed_shaped_data, step_flops = THROUGHPUT.main, THROUGHPUT.seed_shaped_data, THROUGHPUT.step_flops


def test_seed_shaped_data_has_the_seed_class_spread():
    images, labels = seed_shaped_data(35_384, 91)
    counts = torch.bincount(torch.from_numpy(labels)).numpy()
    assert images.shape == (35_384, 32, 32, 3) and len(counts) == 91 and counts.sum() == 35_384
    assert counts.min() == 146 and counts.max() == 526


def test_step_flops_are_about_three_times_the_forward():
    model = build_model("preact_resnet18", 10, width=4)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as forward_only:
        model(x)
    ratio = step_flops(model, x, y) / forward_only.get_total_flops()
    assert 2.5 < ratio < 3.5  # backward costs about twice the forward


def test_benchmark_smoke_writes_both_loops(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main([
        "--model", "preact_resnet18", "--model-options", '{"width": 4}', "--images", "256", "--classes", "5",
        "--batch-size", "32", "--warmup", "1", "--steps", "2", "--windows", "2", "--workers", "0",
        "--device", "cpu", "--out", str(out),
    ])
    report = json.loads(out.read_text())
    # The reference's bf16 + channels-last row only where the device has them (a CPU with native bf16).
    strong = speed_path(torch.device("cpu"))
    expected = ["ours", "usual fp32"] + (["usual amp+cl"] if strong.amp else [])
    assert [r["name"] for r in report["results"]] == expected
    for r in report["results"]:
        assert r["images_per_s"] > 0 and len(r["window_images_per_s"]) == 2 and r["step_flops"] > 0
    assert report["speedup"] == pytest.approx(report["results"][0]["images_per_s"] / report["results"][1]["images_per_s"])
    assert report["environment"]["torch"] == torch.__version__
    assert "| ours |" in capsys.readouterr().out


def test_compare_paths_interleaves_float32_and_bf16_channels_last(tmp_path, capsys):
    out = tmp_path / "paths.json"
    main([
        "--model", "preact_resnet18", "--model-options", '{"width": 4}', "--images", "128", "--classes", "4",
        "--batch-size", "8", "--warmup", "1", "--steps", "1", "--windows", "2", "--device", "cpu",
        "--compare-paths", "--out", str(out),
    ])
    paths = json.loads(out.read_text())["paths"]
    assert {k: len(v) for k, v in paths["window_images_per_s"].items()} == {"fp32": 2, "bf16+cl": 2}
    assert paths["ratio"] == pytest.approx(paths["images_per_s"]["bf16+cl"] / paths["images_per_s"]["fp32"])
    assert "bf16 + channels-last" in capsys.readouterr().out
