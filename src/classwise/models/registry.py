"""Name -> builder registry and the one factory every caller uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    _BUILDERS[name] = builder


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` for ``num_classes`` classes.

    Extra keyword arguments are the variant's data (width, depth, ...).
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model '{name}'; choose one of: {', '.join(available_models())}."
        )
    try:
        return _BUILDERS[name](num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ValueError(f"Model '{name}' does not take the options {sorted(kwargs)}: {exc}.") from exc
