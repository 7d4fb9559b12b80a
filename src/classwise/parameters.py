"""Every parameter block a pipeline reads, and the typed config that owns it.

``check_parameters`` parses all of them at once, so that a typo or a value out of
range is refused before any data is read or any MLflow run is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import parse
from .diagnosis.config import DiagnoseConfig
from .evaluation.config import EvaluateConfig
from .serving.config import PredictConfig
from .sources import DataConfig
from .split import SplitConfig
from .stats import NormalizationConfig
from .training import TrainConfig

# Block name (the top-level key in conf/*/parameters_*.yml) -> its typed config.
BLOCKS: dict[str, type] = {
    "data": DataConfig,
    "split": SplitConfig,
    "normalization": NormalizationConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "predict": PredictConfig,
    "diagnose": DiagnoseConfig,
}


def check_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parse every known block present in ``params``; raise ConfigError on the first bad one."""
    return {name: parse(cls, params[name], name) for name, cls in BLOCKS.items() if name in params}
