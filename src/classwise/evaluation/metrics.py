"""Headline and per-class metrics, from labels and predicted probabilities (scikit-learn)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)


def top_k_accuracy(labels: np.ndarray, probabilities: np.ndarray, k: int) -> float:
    """Share of images whose label is among the k most probable classes.

    scikit-learn's top_k_accuracy_score refuses a two-class probability matrix, which
    a two-class image folder gives, so this is the plain definition.
    """
    k = min(k, probabilities.shape[1])
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1))) if len(labels) else 0.0


def summary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """top-1, top-5, macro-F1 and balanced accuracy of one subset."""
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(1)
    all_labels = np.arange(num_classes)
    return {
        "top1": float(accuracy_score(labels, predicted)),
        "top5": top_k_accuracy(labels, probabilities, 5),
        "macro_f1": float(f1_score(labels, predicted, labels=all_labels, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "n_images": int(len(labels)),
    }


def per_class_table(
    labels: np.ndarray,
    predicted: np.ndarray,
    class_names: list[str],
    train_counts: np.ndarray,
    subset: str,
) -> pd.DataFrame:
    """One row a class: subset, class, precision, recall, f1, support, train_count."""
    all_labels = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=all_labels, zero_division=0
    )
    return pd.DataFrame(
        {
            "subset": subset,
            "class": class_names,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(int),
            "train_count": np.asarray(train_counts, dtype=int),
        }
    )
