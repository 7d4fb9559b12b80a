"""The per-class report as a person reads it, and its MLflow metric names."""

import numpy as np
import pandas as pd
import pytest

from classwise.evaluation.per_class import (
    COLUMNS,
    metric_safe,
    most_confused_with,
    per_class_metrics,
    per_class_report,
    size_ranks,
)

NAMES = ["cat", "dog", "fox"]
TRAIN = np.array([50, 10, 30])
GROUPS = np.array(["head", "tail", "medium"], dtype=object)


def _report():
    # val: cat 2/2 right; dog 1 of 3 right, 2 taken for cat; fox 1 of 2, 1 taken for dog.
    val = (np.array([0, 0, 1, 1, 1, 2, 2]), np.array([0, 0, 1, 0, 0, 2, 1]))
    test = (np.array([0, 1, 2]), np.array([0, 1, 2]))
    train = (np.array([0, 1, 2]), np.array([0, 1, 2]))
    return per_class_report({"train": train, "test": test, "val": val}, NAMES, TRAIN, GROUPS)


def test_held_out_subsets_come_first_and_the_weakest_class_first_within_each():
    report = _report()
    assert list(report.columns) == COLUMNS
    assert report["subset"].tolist() == ["val"] * 3 + ["test"] * 3 + ["train"] * 3
    val = report[report["subset"] == "val"]
    assert val["f1"].is_monotonic_increasing and val["class"].iloc[0] == "dog"


def test_each_class_carries_its_size_rank_group_and_most_confused_partner():
    val = _report().set_index("subset").loc["val"].set_index("class")
    assert val.loc["dog", "confused_with"] == "cat" and val.loc["dog", "confused_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert val.loc["fox", "confused_with"] == "dog" and val.loc["fox", "confused_rate"] == 0.5
    assert val.loc["cat", "confused_with"] == "" and val.loc["cat", "confused_rate"] == 0
    assert val["size_rank"].to_dict() == {"dog": 3, "fox": 2, "cat": 1}
    assert val["group"].to_dict() == {"dog": "tail", "fox": "medium", "cat": "head"}
    assert val["train_count"].to_dict() == {"dog": 10, "fox": 30, "cat": 50}


def test_numbers_are_rounded_to_four_places():
    val = _report().set_index(["subset", "class"]).loc[("val", "dog")]
    assert val["recall"] == 0.3333 and val["f1"] == round(val["f1"], 4)


def test_most_confused_with_breaks_ties_at_the_lower_class():
    partners, rates = most_confused_with(np.array([2, 2]), np.array([0, 1]), NAMES)
    assert partners[2] == "cat" and rates[2] == 0.5


def test_size_ranks_share_a_rank_on_ties():
    assert size_ranks(np.array([5, 9, 5, 1])).tolist() == [2, 1, 2, 4]


def test_per_class_metrics_name_class_then_subset_and_leave_train_out():
    metrics = per_class_metrics(_report())
    assert len(metrics) == 3 * 2 * 3  # classes x held-out subsets x (f1, precision, recall)
    assert metrics["dog.val_recall"] == 0.3333
    assert "cat.test_f1" in metrics and not any("train" in k for k in metrics)


def test_a_class_name_mlflow_refuses_is_made_safe():
    assert metric_safe("café (2)") == "caf_ _2_"
    report = pd.DataFrame({"subset": ["val"], "class": ["a+b"], "f1": [1.0], "precision": [1.0], "recall": [1.0]})
    assert set(per_class_metrics(report)) == {"a_b.val_f1", "a_b.val_precision", "a_b.val_recall"}
