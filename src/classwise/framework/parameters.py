"""Every parameter block a pipeline reads, and the typed config that owns it.

``check_parameters`` parses all of them at once, so that a typo or a value out of
range is refused before any data is read or any MLflow run is opened. The registry
lives here, beside the hook that runs it, rather than in ``core``: it names every
stage's config, and ``core`` stays below the stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.diagnosis.config import DiagnoseConfig
from classwise.evaluation.config import EvaluateConfig
from classwise.serving.config import PredictConfig
from classwise.data.sources import DataConfig
from classwise.data.split import SplitConfig
from classwise.data.stats import NormalizationConfig
from classwise.training import TrainConfig

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


# Blocks read by something other than a pipeline node, checked where they are read.
OTHER_BLOCKS = ("ablation",)  # python -m classwise.ablation (classwise.ablation.ladder.parse_ablation)


def check_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parse every known block present in ``params``; raise ConfigError on the first bad one.

    A top-level block no one reads (``trian`` for ``train``, from a conf file or ``--params``)
    is refused too, rather than silently ignored.
    """
    known = [*BLOCKS, *OTHER_BLOCKS]
    unknown = sorted(str(k) for k in params if k not in known)
    if unknown:
        raise ConfigError(
            f"Unknown parameter block {', '.join(repr(k) for k in unknown)} (from conf/*/parameters*.yml or "
            f"--params); the blocks are: {', '.join(sorted(known))}."
        )
    return {name: parse(cls, params[name], name) for name, cls in BLOCKS.items() if name in params}
