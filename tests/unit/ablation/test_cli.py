"""The command line: --params typed as `kedro run --params` types them."""

import click
import pytest

from classwise.ablation.__main__ import parse_params


def test_params_keep_brackets_together_and_type_values():
    assert parse_params("train.epochs=2,train.milestones=[1,2],train.device=cpu,train.lr=5e-4,x.y=true") == {
        "train.epochs": 2, "train.milestones": [1, 2], "train.device": "cpu", "train.lr": 5e-4, "x.y": True,
    }
    assert parse_params(None) == {}


def test_a_param_without_a_value_is_refused():
    with pytest.raises(click.BadParameter, match="key=value"):
        parse_params("train.epochs")
