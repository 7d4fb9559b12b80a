"""Classwise: train and diagnose image classifiers for small, imbalanced 32x32 datasets."""

import os
import re
import warnings

# torch's idle OpenMP threads sleep at once (PASSIVE) unless the user chose a wait policy or a
# libgomp spin count. libgomp's default (300,000 spins; forever under ACTIVE) ran a training step
# 1.24x faster on an idle 2-core machine, but 0.60x with one core busy, and 3-10x slower when two
# torch processes shared the cores (0.3 s vs 3.0 s a step of a width-16 ResNet-18). A short spin
# is a trade too (benchmarks/openmp_wait.py, docs/benchmarks.md "OpenMP threads"): 10,000 spins
# ran a step 10-19% faster idle and 24-27% slower with one core busy. OpenMP reads these once,
# when torch first loads, so they are set here, before any module of the package imports torch.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
# MLflow configures its own loggers when it is imported; its INFO lines ("Creating initial
# MLflow database tables...") would interleave with the project's. A value the user set is kept.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# Against a tracking server (the ladder's, `--executor ray`) MLflow prints "View run ... / View
# experiment ..." every time a run is ended, dozens of lines a step; the ladder logs its server's
# address once instead. A value the user set is kept.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

# Third-party warnings a user can do nothing about, dropped here, in one place. Kedro
# imports this package (see kedro_init) before it loads its plugins, so they never reach
# the console. MLflow wraps its own warning in `catch_warnings(); simplefilter("once")`,
# which outranks any filter, so the known messages are also dropped where warnings are shown.
_KNOWN_WARNINGS = re.compile("|".join((
    r"register_new_resolver\(\) is deprecated",  # OmegaConf, called by Kedro and kedro-mlflow
    r"Add type hints to the `predict` method",  # MLflow, on kedro-mlflow's own PythonModel
    r"Any type hint is inferred as AnyType",  # MLflow, on the same
)))
for _pattern in _KNOWN_WARNINGS.pattern.split("|"):
    warnings.filterwarnings("ignore", message=".*" + _pattern)
_show_warning = warnings.showwarning


def _show_unknown_warning(message, category, filename, lineno, file=None, line=None):
    if not _KNOWN_WARNINGS.search(str(message)):
        _show_warning(message, category, filename, lineno, file, line)


warnings.showwarning = _show_unknown_warning

def kedro_init() -> None:
    """Kedro's ``kedro.init`` entry point (pyproject.toml): it imports this package, and so
    applies the filters above, before Kedro loads its plugins (kedro-mlflow imports MLflow,
    which warns at import time)."""
