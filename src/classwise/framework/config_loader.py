"""Kedro's OmegaConfigLoader with the project's merge rule for environments.

An environment (conf/seed, conf/local, a user's own) merges into conf/base key by key, at
every depth (Kedro's ``soft`` merge), so it names only what differs. The exception is an
option set of a chosen thing, ``model_options`` and ``loss_options``: it belongs to the
model or loss it configures, so an environment that sets one replaces it whole; merged,
conf/base's ``{width: 16}`` would follow the demo network into every other model. The
ablation ladder treats a step's dict override the same way (classwise.ablation.ladder).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kedro.config import OmegaConfigLoader

OPTION_SETS = ("model_options", "loss_options")  # keys whose dict an environment replaces whole


def _replace_option_sets(merged: dict[str, Any], env: Mapping[str, Any]) -> None:
    for key, value in env.items():
        if key in OPTION_SETS:
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            _replace_option_sets(merged[key], value)


class ClasswiseConfigLoader(OmegaConfigLoader):
    """``soft`` merge across environments, option sets replaced whole (see the module's docstring)."""

    @staticmethod
    def _soft_merge(config: dict[str, Any], env_config: dict[str, Any], env_path: str | None = None) -> Any:
        merged = OmegaConfigLoader._soft_merge(config, env_config, env_path)
        if isinstance(merged, dict) and isinstance(env_config, Mapping):
            from omegaconf import DictConfig, OmegaConf

            env = OmegaConf.to_container(env_config) if isinstance(env_config, DictConfig) else env_config
            _replace_option_sets(merged, env)
        return merged
