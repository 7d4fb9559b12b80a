"""benchmarks/openmp_wait.py: each setting's process environment, and refusals in one sentence."""

import pytest

from tests.conftest import PROJECT_ROOT, load_script

openmp_wait = load_script(PROJECT_ROOT / "benchmarks" / "openmp_wait.py")


def test_a_policy_and_a_spin_count_each_set_one_variable_and_clear_the_other(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "7")
    passive = openmp_wait.env_for("passive")
    spin = openmp_wait.env_for("3000")
    assert passive["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in passive
    assert spin["GOMP_SPINCOUNT"] == "3000" and "OMP_WAIT_POLICY" not in spin


def test_default_clears_both_so_the_worker_gets_libgomps_own_default(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "7")
    env = openmp_wait.env_for("default")
    assert "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env


def test_an_unknown_setting_is_refused_by_name():
    with pytest.raises(SystemExit, match="'fast' is neither PASSIVE, ACTIVE, default nor a spin count"):
        openmp_wait.env_for("fast")


def test_active_beside_other_settings_is_refused():
    with pytest.raises(SystemExit, match="time ACTIVE on its own"):
        openmp_wait.main(["--settings", "PASSIVE", "ACTIVE"])
