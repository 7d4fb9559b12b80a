"""The training core and the throughput benchmark run with torch, torchvision and numpy alone (other packages hidden)."""

from tests.conftest import PROJECT_ROOT

THROUGHPUT_PATH = PROJECT_ROOT / "benchmarks" / "throughput.py"

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
