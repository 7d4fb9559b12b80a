"""The package makes torch's idle OpenMP threads sleep at once, before torch loads, unless the user chose.

OpenMP reads these variables once, when the library loads, so what is tested is the environment
a fresh interpreter has after ``import classwise``: a subprocess is the process boundary under test.
"""

import os
import subprocess
import sys

import pytest

PROBE = "import os, classwise; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"


def _env_after_import(**env: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ["None", "PASSIVE"]),  # nothing chosen: idle threads sleep at once
    ({"GOMP_SPINCOUNT": "10000"}, ["10000", "None"]),  # the user's spin count is kept, no policy over it
    ({"OMP_WAIT_POLICY": "ACTIVE"}, ["None", "ACTIVE"]),  # the user's policy is kept
])
def test_threads_sleep_at_once_unless_the_user_chose_a_policy_or_a_spin_count(env, expected):
    assert _env_after_import(**env) == expected


def test_torch_is_not_loaded_by_the_package_import_so_the_setting_still_applies():
    out = subprocess.run([sys.executable, "-c", "import sys, classwise; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
