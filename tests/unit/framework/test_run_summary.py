"""The closing console summary names the weakest classes and, when any class is weak, the next command."""

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from classwise.evaluation.per_class import per_class_report
from classwise.framework.run_summary import run_summary


def _report():
    names = ["ant", "bee", "cow", "doe", "elk"]
    labels = np.repeat(np.arange(5), 4)
    predicted = labels.copy()
    predicted[labels == 1] = 2  # bee: every image taken for cow
    predicted[np.flatnonzero(labels == 3)[:2]] = 4  # doe: half taken for elk
    return per_class_report({"val": (labels, predicted)}, names, np.array([9, 3, 8, 5, 7]),
                            np.array(["head", "tail", "head", "tail", "medium"], object))


def _summary(report, low, extra=()):
    correlation = {"subset": "val", "f1_threshold": 0.5, "n_classes": 5, "pearson_r": 0.3, "spearman_rho": 0.2,
                   "classes_below_threshold": low}
    data = {"per_class_report": report, "f1_size_correlation": correlation}
    catalog = DataCatalog({name: MemoryDataset(value) for name, value in data.items()})
    outputs = ["per_class_report", "f1_size_correlation", *extra]
    pipeline = Pipeline([Node(lambda: [None] * len(outputs), None, outputs, name="made")])
    return run_summary(catalog, pipeline, {}, None, None).console


def test_the_summary_names_the_three_weakest_with_size_and_partner_and_the_next_command():
    report = _report()
    console = _summary(report, [{"class": "bee", "f1": 0.0, "train_count": 3}])
    lines = console.splitlines()
    start = next(i for i, line in enumerate(lines) if "weakest 3" in line)
    weakest = lines[start + 1:start + 4]
    assert [line.split()[0] for line in weakest] == ["bee", "doe", "cow"]
    assert "3 train" in weakest[0] and "cow (100% of its val images)" in weakest[0]
    assert "elk (50% of its val images)" in weakest[1]
    assert "next: `kedro run --pipelines=diagnose`" in console


def test_no_next_command_without_a_weak_class_or_once_a_diagnosis_ran():
    report = _report()
    assert "next:" not in _summary(report, [])
    diagnosed = _summary(report, [{"class": "bee", "f1": 0.0, "train_count": 3}], extra=["class_diagnosis"])
    assert "next:" not in diagnosed and "weakest 3" in diagnosed


def test_the_training_dynamics_suspects_are_counted_when_the_run_wrote_them():
    import pandas as pd

    dynamics = pd.DataFrame({"id": list("abcd"), "flagged": [True, False, False, False]})
    catalog = DataCatalog({"training_dynamics": MemoryDataset(dynamics)})
    pipeline = Pipeline([Node(lambda: None, None, "training_dynamics", name="made")])
    console = run_summary(catalog, pipeline, {}, None, None).console
    assert "suspect labels: 1 of 4 training images (25.0%)" in console
    assert "suspect labels" not in _summary(_report(), [])  # not written by this run: not read
