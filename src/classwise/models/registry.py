"""Name -> builder registry and the one factory every caller uses."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn
from classwise.core.errors import ConfigError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    _BUILDERS[name] = builder


def registered(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``builder`` under its own name, beside its definition."""
    register(builder.__name__, builder)
    return builder


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` for ``num_classes`` classes.

    Extra keyword arguments are the variant's data (width, depth, ...).
    """
    if name not in _BUILDERS:
        raise ConfigError(
            f"Unknown model '{name}'; choose one of: {', '.join(available_models())}."
        )
    try:
        return _BUILDERS[name](num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"Model '{name}' does not take the options {sorted(kwargs)}: {exc}.") from exc


def model_option_names(name: str) -> list[str] | None:
    """The options ``name``'s builder takes besides num_classes; None when it takes any (``**kwargs``)."""
    params = inspect.signature(_BUILDERS[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return sorted(k for k in params if k != "num_classes")
