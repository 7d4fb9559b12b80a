"""A saved model's network: rebuilt from its config through the registry, then its weights loaded."""

from __future__ import annotations

from typing import Any

from torch import nn

from classwise.models.registry import build_model


def load_network(model: dict[str, Any]) -> nn.Module:
    """The network a saved model (``{"config": ..., "state_dict": ...}``) describes, with its weights."""
    config = model["config"]  # other keys (lineage, best epoch, class names) are not needed here
    network = build_model(config["name"], config["num_classes"], **config.get("options", {}))
    network.load_state_dict(model["state_dict"])
    return network
