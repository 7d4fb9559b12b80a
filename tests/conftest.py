"""Shared fixtures: small synthetic image sets and an isolated copy of the project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kedro.framework.project import configure_project

from classwise.sources import LabelledImages

configure_project("classwise")  # so that tests can ask the registry for pipelines

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


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


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the project (conf, pyproject, src) so runs write only there."""
    return copy_project(tmp_path / "project")


def copy_project(root: Path) -> Path:
    """Copy conf, pyproject and src into ``root`` (also for module-scoped fixtures)."""
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copy(PROJECT_ROOT / ".telemetry", root)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    # Kedro wants the source folder inside the project root, so copy it (it is small).
    shutil.copytree(PROJECT_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root
