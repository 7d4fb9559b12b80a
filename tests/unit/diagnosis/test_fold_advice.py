"""The refusal of a class smaller than diagnose.folds gives advice that the parameter check then accepts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.diagnosis import DiagnoseConfig, check_fold_sizes


def _refusal(counts: list[int], folds: int) -> str:
    names = [f"class {c}" for c in range(len(counts))]
    with pytest.raises(ConfigError) as raised:
        check_fold_sizes(np.repeat(np.arange(len(counts)), counts), names, folds)
    return str(raised.value)


@pytest.mark.parametrize("counts", [[10, 1], [10, 0], [1, 3, 10]])
def test_a_class_under_two_images_is_told_to_grow_or_go_not_to_lower_the_folds(counts):
    message = _refusal(counts, folds=4 if 3 in counts else 2)
    assert "lower diagnose.folds" not in message
    assert "add images to" in message and "remove" in message and "cannot be lower than 2" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_lowering_the_folds_as_advised_is_accepted_and_then_fits_every_class():
    counts, folds = [10, 3], 4
    message = _refusal(counts, folds)
    advised = int(re.search(r"lower diagnose.folds to at most (\d+)", message).group(1))
    assert advised == 3
    parse(DiagnoseConfig, {"folds": advised}, "diagnose")  # the parameter check takes the advice
    check_fold_sizes(np.repeat([0, 1], counts), ["class 0", "class 1"], advised)  # and the data fit it
