"""The benchmark scripts time the OpenMP setting `kedro run` has: the package's PASSIVE is in the environment
when torch loads (OpenMP reads it only then). Imported after torch, it did not apply, and the scripts timed
the step ~20% apart from `kedro run` (docs/benchmarks.md). A fresh interpreter is the process boundary under test.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

# Print the wait policy in force when torch is first imported, and stop there: what follows is not under test.
PROBE = """
import importlib.abc, importlib.util, os, sys
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print(os.environ.get("OMP_WAIT_POLICY"), flush=True)
            os._exit(0)
        return None
sys.meta_path.insert(0, Watch())
sys.path.insert(0, os.path.dirname(sys.argv[1]))
spec = importlib.util.spec_from_file_location("script", sys.argv[1])
module = sys.modules["script"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
spec.loader.exec_module(module)
print("torch never imported")
"""


@pytest.mark.parametrize("script", ["throughput.py", "cpu_paths.py", "time_to_accuracy.py", "imbalance_cifar100.py"])
def test_torch_loads_under_the_packages_openmp_setting(script):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", PROBE, str(PROJECT_ROOT / "benchmarks" / script)], env=env,
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"
