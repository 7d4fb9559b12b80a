"""Shared fixtures: small synthetic image sets and an isolated copy of the project."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kedro.framework.project import configure_project

from classwise.data.sources import LabelledImages

configure_project("classwise")  # so that tests can ask the registry for pipelines

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


# Session fixtures of tests/e2e/conftest.py that several modules share: one xdist worker computes each.
SHARED_SESSION_FIXTURES = {"trained_project": "trained", "trained_copy": "trained", "local_ladder": "ladder"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into the node ids
def pytest_collection_modifyitems(items):
    """Run the suite on both cores (pyproject: -n 2 --dist loadgroup) without building a fixture twice:
    a module's tests stay on one worker (its module fixtures are built once), and the modules that share a
    session fixture stay together on one worker."""
    for item in items:
        shared = [SHARED_SESSION_FIXTURES[n] for n in getattr(item, "fixturenames", ()) if n in SHARED_SESSION_FIXTURES]
        group = "ladder" if "ladder" in shared else shared[0] if shared else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _every_pipeline_registered():
    """A Kedro session run in this process leaves Kedro's registry filtered to the pipelines it ran
    (``pipelines.set_requested``); each test starts and ends with all of them visible again. (MLflow's
    and kedro-mlflow's state is put back by tests.support.sessions.mlflow_state_restored.)"""
    from kedro.framework.project import pipelines

    pipelines.set_requested(None)
    yield
    pipelines.set_requested(None)


def make_images(counts: list[int], size: int = 32, seed: int = 0) -> LabelledImages:
    """Class c is a colour blob at its own place plus noise: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c, n in enumerate(counts):
        base = np.zeros((size, size, 3), dtype=np.float32)
        y, x = divmod(c * 5, size - 8)
        base[y : y + 8, x : x + 8] = rng.uniform(80, 255, 3)
        noisy = base[None] + rng.normal(0, 20, (n, size, size, 3))
        images.append(np.clip(noisy, 0, 255).astype(np.uint8))
        labels.append(np.full(n, c))
    return LabelledImages(
        images=np.concatenate(images),
        labels=np.concatenate(labels),
        class_names=[f"class {c}" for c in range(len(counts))],
        ids=[f"img/{i:05d}" for i in range(sum(counts))],
    )


@pytest.fixture
def small_images() -> LabelledImages:
    return make_images([40, 30, 25, 60])


def _kedro_env(one_thread: bool) -> dict:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MPLBACKEND": "Agg"}
    if one_thread:  # on a shared 2-core machine one torch thread is the fastest for a tiny network
        env["OMP_NUM_THREADS"] = "1"
    return env


def kedro(project: Path, *args: str, one_thread: bool = False) -> subprocess.CompletedProcess:
    """The kedro CLI as a user types it (``kedro(root, "run", "--pipelines=data")``), no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args], cwd=project, env=_kedro_env(one_thread),
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
    )


def kedro_killed_after_first_checkpoint(project: Path, *args: str, timeout_s: float) -> int:
    """Start ``kedro <args>`` (one torch thread), SIGKILL the launching process as soon as the first
    checkpoint exists (written atomically at the end of epoch 1), and return its exit status."""
    checkpoints = project / "data" / "06_models" / "checkpoints"
    first = subprocess.Popen([sys.executable, "-m", "kedro", *args], cwd=project, env=_kedro_env(True),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout_s
        while not list(checkpoints.glob("*.pt")):
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"no checkpoint after {timeout_s:.0f} s"
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # the launching process only: what it started must not outlive it
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.stderr.close()
    return first.returncode


def load_script(path: Path):
    """A script under benchmarks/ as a module (it is not part of the package)."""
    if path.stem in sys.modules:
        return sys.modules[path.stem]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def copy_project(root: Path) -> Path:
    """Copy the project (conf, pyproject, src) to ``root`` so that runs write only there."""
    root.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copy(PROJECT_ROOT / ".telemetry", root)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    # Kedro wants the source folder inside the project root, so copy it (it is small).
    shutil.copytree(PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the project, so runs write only there."""
    return copy_project(tmp_path / "project")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny test networks train fastest on one thread; in-process tests use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(num_classes: int = 4, seed: int = 0) -> dict:
    """A saved model as the train node writes it (untrained, width 4), with lineage keys besides."""
    import torch

    from classwise.models import build_model

    torch.manual_seed(seed)
    network = build_model("preact_resnet18", num_classes, width=4)
    config = {"name": "preact_resnet18", "num_classes": num_classes, "options": {"width": 4}, "best_epoch": 1,
              "class_names": [f"class {c}" for c in range(num_classes)], "lineage": {"split": "abc123"},
              "image_size": 32, "normalization": TINY_STATS}  # the input it was trained on, as the train node saves it
    return {"config": config, "state_dict": network.state_dict()}


TINY_STATS = {"mean": [0.4, 0.45, 0.5], "std": [0.25, 0.26, 0.27]}

# What new_images_folder holds: images predicted, and files listed as not predicted.
NEW_IMAGES_GOOD = ["a.png", "b.jpg", "nested/deeper/c.png", "grey16.png", "rotated.jpg"]
NEW_IMAGES_REJECTED = {
    "truncated.png": "truncated", "empty.jpg": "empty file", "fake.png": "not an image",
    "notes.txt": "not an image file", ".DS_Store": "hidden file", ".hidden": "hidden folder",
}


@pytest.fixture
def new_images_folder(tmp_path: Path) -> Path:
    """New images to predict: good ones in several formats, modes and sizes, broken and odd files."""
    from PIL import Image

    rng = np.random.default_rng(1)
    root = tmp_path / "new_images"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / "b.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), "RGBA").save(root / "nested/deeper/c.png")
    Image.fromarray(rng.integers(0, 65535, (32, 32)).astype(np.uint16)).save(root / "grey16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.fromarray(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)).save(root / "rotated.jpg", exif=exif)
    whole = (root / "a.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "fake.png").write_text("not a picture")
    (root / "notes.txt").write_text("holiday pictures")
    (root / ".DS_Store").write_bytes(b"\0\1")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / ".hidden" / "x.png")
    return root


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """A throwaway MLflow tracking store and registry (SQLite) for a test module, artifacts beside it.

    Module-scoped: creating the SQLite schema takes seconds. MLflow keeps the URIs and the experiment
    in module globals and in environment variables (which `kedro run` subprocesses inherit); all are put
    back exactly afterwards, so no later test writes here.
    """
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the default artifact root (./mlruns) lands here
        patch.setattr(tracking_utils, "_tracking_uri", uri)
        patch.setattr(registry_utils, "_registry_uri", uri)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        patch.setattr(fluent, "_active_experiment_id", None)  # set_experiment sets these two
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        mlflow.set_experiment("classwise")
        try:
            yield uri
        finally:
            if mlflow.active_run() is not None:
                mlflow.end_run()
