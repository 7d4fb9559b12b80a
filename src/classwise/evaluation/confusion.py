"""Which classes the model mixes up: the row-normalised confusion matrix, the worst
pairs, and an order of the classes that puts confusable ones next to each other."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from sklearn.metrics import confusion_matrix


def confusion_counts(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(true, predicted) image counts, num_classes x num_classes, every class present."""
    return confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """Share of each true class predicted as each class; a class with no images is a row of 0."""
    support = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, support, out=np.zeros(counts.shape, dtype=float), where=support > 0)


def confused_partner(rates: np.ndarray, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """For each class, the other class with the highest row-normalised confusion ``rates`` and that rate:
    along axis 1, the class its images are most often predicted as; along axis 0, the class whose images
    are most often predicted as it. Ties go to the lower class index."""
    off = rates.copy()
    np.fill_diagonal(off, -1.0)
    if axis == 0:  # images of class i predicted as c, as a share of class i's images
        off = off.T
    best = off.argmax(1)
    return best, off[np.arange(len(off)), best]


def confusion_table(counts: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """The whole matrix in long form, one row a cell: true/predicted label and class, count, rate."""
    n = len(class_names)
    rates = row_normalised(counts)
    true_label, pred_label = np.divmod(np.arange(n * n), n)
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame(
        {
            "true_label": true_label,
            "true": names[true_label],
            "predicted_label": pred_label,
            "predicted": names[pred_label],
            "count": counts.ravel().astype(int),
            "rate": rates.ravel(),
        }
    )


def top_confusions(counts: np.ndarray, class_names: list[str], k: int) -> pd.DataFrame:
    """The k most confused (true, predicted) pairs off the diagonal: rate first, then count.

    Only pairs that happened at least once are listed, so a perfect model gives an empty table.
    """
    rates = row_normalised(counts)
    true_label, pred_label = np.nonzero(counts * (1 - np.eye(len(counts), dtype=int)))
    table = pd.DataFrame(
        {
            "true": [class_names[i] for i in true_label],
            "predicted": [class_names[j] for j in pred_label],
            "rate": rates[true_label, pred_label],
            "count": counts[true_label, pred_label].astype(int),
        }
    )
    return table.sort_values(["rate", "count", "true", "predicted"], ascending=[False, False, True, True]).head(
        k
    ).reset_index(drop=True)


def confusable_order(rates: np.ndarray) -> np.ndarray:
    """Class indices in an order that seats classes often confused with each other side by side.

    Average-linkage clustering on the symmetrised off-diagonal rates (distance 1 - rate),
    leaves in optimal order. Without any confusion there is nothing to cluster on, and the
    label order is kept.
    """
    n = len(rates)
    mixed = (rates + rates.T) / 2
    np.fill_diagonal(mixed, 0)
    if n < 3 or not mixed.any():
        return np.arange(n)
    distance = 1 - mixed / mixed.max()
    np.fill_diagonal(distance, 0)
    linkage = hierarchy.linkage(squareform(distance, checks=False), method="average")
    return hierarchy.leaves_list(hierarchy.optimal_leaf_ordering(linkage, squareform(distance, checks=False)))
