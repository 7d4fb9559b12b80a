"""Head / medium / tail class groups by train count, their accuracy and macro-F1, and post-hoc
logit adjustment (Menon et al. 2021) of predicted probabilities.

Groups follow the long-tailed-recognition habit of reporting many-, medium- and few-shot
classes separately: by default the classes sorted by train count are cut into three
near-equal thirds (terciles); with thresholds ``[a, b]`` a class is tail below ``a``
train images, head above ``b``, medium otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

GROUPS = ("head", "medium", "tail")


def class_groups(train_counts: np.ndarray, thresholds: Sequence[int] | None = None) -> np.ndarray:
    """The group name of every class, from its number of training images."""
    counts = np.asarray(train_counts)
    groups = np.full(len(counts), "medium", dtype=object)
    if thresholds is None:
        # Ties at a cut are split by class index, so the thirds stay equal in size.
        tail, _, head = np.array_split(np.argsort(counts, kind="stable"), 3)
        groups[tail], groups[head] = "tail", "head"
    else:
        low, high = thresholds
        groups[counts < low], groups[counts > high] = "tail", "head"
    return groups


def describe_groups(train_counts: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, int]]:
    """Classes in each group and the range of their train counts (for metrics.json)."""
    counts = np.asarray(train_counts)
    out = {}
    for g in GROUPS:
        members = counts[groups == g]
        out[g] = {"classes": int(len(members)),
                  "train_count_min": int(members.min()) if len(members) else 0,
                  "train_count_max": int(members.max()) if len(members) else 0}
    return out


def group_metrics(labels: np.ndarray, predicted: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """``<group>_top1`` over the group's images and ``<group>_macro_f1`` over its classes.

    F1 of each class counts every prediction in the subset (a head image predicted as a tail
    class lowers that tail class's precision), then is averaged over the group's classes.
    A group without classes or images is left out rather than reported as 0.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    all_classes = np.arange(len(groups))
    f1 = f1_score(labels, predicted, labels=all_classes, average=None, zero_division=0)
    out: dict[str, float] = {}
    for g in GROUPS:
        members = all_classes[groups == g]
        in_group = np.isin(labels, members)
        if len(members) == 0 or not in_group.any():
            continue
        out[f"{g}_top1"] = float(np.mean(predicted[in_group] == labels[in_group]))
        out[f"{g}_macro_f1"] = float(f1[members].mean())
    return out


def adjust_probabilities(probabilities: np.ndarray, train_counts: np.ndarray, tau: float) -> np.ndarray:
    """Post-hoc logit adjustment: softmax(log p - tau * log prior), the prior from train counts.

    Working from probabilities is exact, as log p differs from the logits by a per-image
    constant. A class without training images counts as one, to keep its prior finite.
    """
    counts = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    log_prior = np.log(counts / counts.sum())
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-30, None)) - tau * log_prior
    logits -= logits.max(axis=1, keepdims=True)
    adjusted = np.exp(logits)
    return (adjusted / adjusted.sum(axis=1, keepdims=True)).astype(np.float32)
