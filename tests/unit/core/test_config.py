from dataclasses import dataclass, field
from typing import Literal

import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError


@dataclass
class Inner:
    rate: float = 0.5


@dataclass
class Example:
    epochs: int = 3
    mode: Literal["a", "b"] = "a"
    milestones: list[int] = field(default_factory=list)
    root: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_parses_values_and_keeps_defaults():
    cfg = parse(Example, {"epochs": 5, "milestones": [1, 2], "inner": {"rate": 1}}, "train")
    assert cfg.epochs == 5 and cfg.mode == "a" and cfg.milestones == [1, 2]
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)


def test_unknown_key_is_named_with_known_keys():
    with pytest.raises(ConfigError, match=r"Unknown parameter 'train\.epoch'.*epochs"):
        parse(Example, {"epoch": 5}, "train")


def test_unknown_nested_key_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"'train\.inner\.speed'"):
        parse(Example, {"inner": {"speed": 1}}, "train")


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"epochs": "ten"}, "train.epochs"),
        ({"epochs": True}, "train.epochs"),
        ({"mode": "c"}, "train.mode"),
        ({"milestones": [1, "x"]}, r"train.milestones\[1\]"),
        ({"root": 3}, "train.root"),
    ],
)
def test_wrong_type_is_named(params, key):
    with pytest.raises(ConfigError, match=rf"Parameter '{key}' must be"):
        parse(Example, params, "train")
