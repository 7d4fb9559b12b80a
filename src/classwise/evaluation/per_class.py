"""The per-class report as a person reads it: held-out subsets first, weakest class first, rounded, each
class with its train count, size rank, head/medium/tail group and the class it is most often taken for;
and the same numbers as MLflow metric names that line runs up class by class."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from classwise.evaluation.confusion import confused_partner, confusion_counts, row_normalised
from classwise.evaluation.metrics import per_class_table

SUBSET_ORDER = ("val", "test", "train")  # held-out first: the numbers a class is judged by
COLUMNS = ["subset", "class", "f1", "precision", "recall", "support", "train_count", "size_rank", "group",
           "confused_with", "confused_rate"]
DIGITS = 4  # enough that a threshold at 0.5 still tells 0.4996 from 0.5
LOGGED_SUBSETS = ("val", "test")
LOGGED_METRICS = ("f1", "precision", "recall")
WEAKEST_FIRST = ["f1", "recall", "class"]  # the order of a subset's rows, and of every "weakest" list


def most_confused_with(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> tuple[list, np.ndarray]:
    """For each class, the other class its images are most often predicted as, and the share of its images.

    A class whose images are never predicted as another gets "" and 0. Ties go to the lower class index.
    """
    partner, rate = confused_partner(row_normalised(confusion_counts(labels, predicted, len(class_names))))
    names = [class_names[p] if r > 0 else "" for p, r in zip(partner, rate)]
    return names, np.maximum(rate, 0.0)  # a single class has no other: its rate is -1 off the diagonal


def size_ranks(train_counts: np.ndarray) -> np.ndarray:
    """1 for the class with the most train images; ties share the better rank."""
    counts = np.asarray(train_counts)
    return (counts[None, :] > counts[:, None]).sum(axis=1) + 1


def per_class_report(
    subsets: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: list[str],
    train_counts: np.ndarray,
    groups: np.ndarray,
) -> pd.DataFrame:
    """One row a class and subset (``subsets`` maps a subset to its labels and predicted classes)."""
    ranks = size_ranks(train_counts)
    tables = []
    for subset in sorted(subsets, key=lambda s: SUBSET_ORDER.index(s) if s in SUBSET_ORDER else len(SUBSET_ORDER)):
        labels, predicted = subsets[subset]
        table = per_class_table(labels, predicted, class_names, train_counts, subset)
        table["size_rank"] = ranks
        table["group"] = groups
        table["confused_with"], table["confused_rate"] = most_confused_with(labels, predicted, class_names)
        table = table.sort_values(WEAKEST_FIRST, kind="stable")
        tables.append(table[COLUMNS])
    report = pd.concat(tables, ignore_index=True)
    rounded = ["f1", "precision", "recall", "confused_rate"]
    report[rounded] = report[rounded].round(DIGITS)
    return report


def metric_safe(name: str) -> str:
    """A class name as MLflow accepts it in a metric name (letters, digits, _ - . space / :)."""
    return re.sub(r"[^A-Za-z0-9_\-. :]", "_", str(name)) or "_"


def per_class_metrics(report: pd.DataFrame) -> dict[str, float]:
    """``<class>.<subset>_<f1|precision|recall>`` for the held-out subsets (the catalog logs them under
    ``per_class/``): MLflow's Compare lists a class's numbers together, each run's value side by side, and
    its charts keep them in a section of their own."""
    out: dict[str, float] = {}
    for row in report[report["subset"].isin(LOGGED_SUBSETS)].to_dict("records"):
        for metric in LOGGED_METRICS:
            out[f"{metric_safe(row['class'])}.{row['subset']}_{metric}"] = float(row[metric])
    return out
