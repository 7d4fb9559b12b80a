"""Shared end-to-end state: one tiny trained project and one tiny ablation ladder a test session.

Starting `kedro run` costs seconds before the first node; training the demo once and copying
the result for each test that changes it keeps the end-to-end tier within its time budget.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_project, kedro

# A run just long enough to give a model whose F1 differs between classes.
TRAIN_TINY = ",".join([
    "train.epochs=2", "train.model_options.width=8", "train.milestones=[1]", "train.progress=false",
])


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`kedro run --pipelines=train` of the demo as a user types it, once; read it, never change it."""
    project = copy_project(tmp_path_factory.mktemp("trained") / "project")
    return project, kedro(project, "run", "--pipelines=train", f"--params={TRAIN_TINY}")


def copy_trained(trained: Path, target: Path) -> Path:
    """The trained project's files (data, model, checkpoints) with an MLflow store of its own."""
    shutil.copytree(trained, target, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    return target


@pytest.fixture
def trained_copy(trained_project, tmp_path) -> Path:
    project, proc = trained_project
    assert proc.returncode == 0, proc.stderr[-3000:]
    return copy_trained(project, tmp_path / "project")


TINY_LADDER = """
ablation:
  scale: tiny
  scales:
    tiny:
      description: the smallest ladder
      caveat: a tiny ladder checks the mechanics only
      overrides: {train.epochs: 2, train.milestones: [1], train.progress: false, train.batch_size: 128,
                  train.model_options: {width: 4}}
      steps:
        - {name: baseline, changes: "width 4, no augmentation", overrides: {train.augment: none, train.weight_decay: 0.0}}
        - {name: broken, extends: baseline, changes: "a WRN depth that cannot be built",
           overrides: {train.model: wrn, train.model_options: {depth: 27, widen: 1, width: 4}}}
        - {name: densenet, extends: baseline, changes: "a DenseNet-BC with its own options, none of the scale's width",
           overrides: {train.model: densenet_bc, train.model_options: {depth: 10, growth: 4}}}
        - {name: weight_decay, extends: baseline, changes: "+ weight decay",
           sweep: {key: train.weight_decay, values: [5.0e-4, 1.0e-3]}}
"""
# The local ladder also has a step that changes the data: the label fixes below, applied in its own folder.
CLEANED_STEP = """        - {name: cleaned, extends: baseline, changes: "the baseline with label fixes",
           overrides: {data.label_fixes: data/01_raw/label_fixes.csv}}
"""
LABEL_FIXES = "id,action,new_class,note\ndigits/0000,drop,,a test\ndigits/0001,drop,,a test\ndigits/0004,relabel,3,a test\n"
LADDER_STEPS = ["baseline", "broken", "densenet", "weight_decay_5e-4", "weight_decay_1e-3", "cleaned"]


def run_ladder_command(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "classwise.ablation", *args], cwd=project, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture(scope="session")
def local_ladder(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The tiny ladder run by the local executor, once: the runner's tests and the Ray comparison read it."""
    project = copy_project(tmp_path_factory.mktemp("ablation") / "project")
    (project / "conf" / "local" / "parameters_ablation.yml").write_text(TINY_LADDER + CLEANED_STEP)
    (project / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
    (project / "data" / "01_raw" / "label_fixes.csv").write_text(LABEL_FIXES)
    # The user's own trained model, which the ladder must leave as it is (each step keeps its own).
    (project / USERS_MODEL).parent.mkdir(parents=True, exist_ok=True)
    (project / USERS_MODEL).write_bytes(USERS_MODEL_BYTES)
    return project, run_ladder_command(project)


USERS_MODEL = Path("data") / "06_models" / "model.pt"
USERS_MODEL_BYTES = b"the model of the user's last kedro run"
