"""Strict parsing of parameter dicts into typed dataclasses.

Every node validates its parameters once at its boundary: an unknown key or a
value of the wrong type is one clear sentence naming the key and the fix.
Plain Python, no Kedro imports, so the training core can use it too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from classwise.core.errors import ConfigError

T = TypeVar("T")


# The dotted name of the block ``parse`` is building, so that a config's own range checks
# name the block they check (``diagnose.recipe.epochs``, not ``train.epochs``).
_BLOCK: ContextVar[str | None] = ContextVar("classwise_parameter_block", default=None)


def block_name(default: str) -> str:
    """The dotted name of the parameter block being parsed, or ``default`` outside ``parse``."""
    return _BLOCK.get() or default


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` checked against ``tp``; raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise _wrong_type(key, value, tp)
    if tp is type(None):
        if value is None:
            return None
        raise _wrong_type(key, value, tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise _wrong_type(key, value, tp)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(key, value, tp)
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _wrong_type(key, value, tp)
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _wrong_type(key, value, tp)
        return parse(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong_type(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong_type(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _wrong_type(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong_type(key, value, tp)
    if isinstance(value, tp):
        return value
    raise _wrong_type(key, value, tp)


def _wrong_type(key: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(
        f"Parameter '{key}' must be {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix it in conf/base/parameters_*.yml or with --params."
    )


def parse(cls: type[T], params: Mapping[str, Any] | None, section: str) -> T:
    """Build dataclass ``cls`` from ``params``, refusing unknown keys and wrong types.

    ``section`` is the dotted name of the parameter block (``"train"``), used in
    error messages so that a user knows which key to fix.
    """
    params = dict(params or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown parameter {', '.join(repr(f'{section}.{k}') for k in unknown)}; "
            f"known keys of '{section}' are: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, field in fields.items():
        key = f"{section}.{name}"
        if name in params:
            kwargs[name] = _coerce(params[name], hints[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"Parameter '{key}' is required; set it in conf/base/parameters_*.yml.")
    token = _BLOCK.set(section)
    try:
        return cls(**kwargs)
    finally:
        _BLOCK.reset(token)
