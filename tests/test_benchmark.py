"""The training benchmark runs at a tiny size on the CPU and writes its JSON (no timing asserted)."""

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import load_script
from classwise.models import build_model

THROUGHPUT_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
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
    assert [r["name"] for r in report["results"]] == ["ours", "usual fp32"]  # no strong row: this CPU path is fp32
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


CORE_ONLY = """
import sys

# A module set to None in sys.modules looks absent to `import` and to importlib's find_spec alike.
for name in ("sklearn", "pandas", "kedro", "kedro_datasets", "kedro_mlflow", "mlflow", "tqdm", "scipy",
             "matplotlib"):
    sys.modules[name] = None
sys.path.insert(0, BENCHMARKS)
from throughput import main
report = main(["--model", "preact_resnet18", "--model-options", '{"width": 4}', "--images", "128",
               "--classes", "4", "--batch-size", "32", "--warmup", "1", "--steps", "1", "--windows", "1",
               "--workers", "0", "--device", "cpu"])
assert report["results"][0]["images_per_s"] > 0
import numpy as np
from classwise.training import TrainConfig, fit
x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
y = np.arange(40) % 4
cfg = TrainConfig(model="preact_resnet18", model_options={"width": 4}, epochs=1, batch_size=16, device="cpu", progress=False,
                  cutmix_p=0.5, oversample=True, augment="seed_heavy")
fit(x, y, x[:8], y[:8], 4, [0.5] * 3, [0.25] * 3, cfg)
print("core ok")
"""


def test_training_core_and_benchmark_run_with_torch_torchvision_numpy_alone():
    import subprocess
    import sys

    script = f"BENCHMARKS = {str(THROUGHPUT_PATH.parent)!r}\n" + CORE_ONLY
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "core ok" in proc.stdout
