"""Label issues: images whose given class the out-of-fold probabilities doubt (cleanlab), and
exact duplicates filed under two classes; scored against known flips where there are any."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from classwise.core.errors import DataError

ISSUE_COLUMNS = ["rank", "id", "source_file", "label", "given_class", "suggested_label", "suggested_class",
                 "self_confidence", "suggested_confidence", "reason"]
CLEANLAB = "cleanlab"
DUPLICATE = "exact duplicate across classes"


def _source_file(image_id: str) -> str:
    """The id when it names a file (image_folder ids are paths); empty for generated or archive ids."""
    return image_id if PurePosixPath(image_id).suffix else ""


def _rows(index: np.ndarray, labels: np.ndarray, suggested: np.ndarray, probabilities: np.ndarray,
          ids: list[str], class_names: list[str], reason: str) -> pd.DataFrame:
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame({
        "id": [ids[i] for i in index],
        "source_file": [_source_file(ids[i]) for i in index],
        "label": labels[index],
        "given_class": names[labels[index]],
        "suggested_label": suggested,
        "suggested_class": names[suggested],
        "self_confidence": probabilities[index, labels[index]],
        "suggested_confidence": probabilities[index, suggested],
        "reason": reason,
    })


def find_issues(
    labels: np.ndarray,
    probabilities: np.ndarray,
    ids: list[str],
    class_names: list[str],
    filter_by: str = "prune_by_noise_rate",
    n_jobs: int | None = 1,
) -> pd.DataFrame:
    """cleanlab's label issues on out-of-fold probabilities, most suspect (lowest self-confidence) first.

    The suggested class is the most probable one; the self-confidence is the
    probability the held-out model gave the class the image is filed under.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(labels) == 0:
        return pd.DataFrame(columns=ISSUE_COLUMNS)
    ranked = find_label_issues(labels, probabilities, filter_by=filter_by,
                               return_indices_ranked_by="self_confidence", n_jobs=n_jobs)
    ranked = np.asarray(ranked, dtype=np.int64)
    table = _rows(ranked, labels, probabilities[ranked].argmax(1), probabilities, ids, class_names, CLEANLAB)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[ISSUE_COLUMNS]


def duplicate_issues(
    issues: pd.DataFrame,
    duplicates: pd.DataFrame,
    labels: np.ndarray,
    probabilities: np.ndarray,
    ids: list[str],
    class_names: list[str],
) -> pd.DataFrame:
    """Join exact duplicates across classes (found at ingest) to the issues table.

    An image already flagged by cleanlab gets the duplicate named in its reason; the
    others are appended after cleanlab's ranks, suggested class = the other class its
    copy is filed under.
    """
    table = issues.copy()
    across = duplicates[duplicates["across_classes"].astype(bool)] if len(duplicates) else duplicates
    if across is None or len(across) == 0:
        return table
    position = pd.Index(ids).get_indexer(across["id"].astype(str))
    if (position < 0).any():
        missing = across["id"].astype(str)[position < 0].iloc[0]
        raise DataError(
            f"duplicate_images.csv names image '{missing}', which the dataset does not hold; rerun "
            f"'kedro run --pipelines=data' so the two match."
        )
    across = across.assign(position=position)
    flagged = table["id"].isin(across["id"].astype(str))
    table.loc[flagged, "reason"] = table.loc[flagged, "reason"] + "; " + DUPLICATE
    extra = across[~across["id"].astype(str).isin(table["id"])]
    if len(extra):
        suggested = []
        for _, row in extra.iterrows():
            others = across.loc[(across["group"] == row["group"]) & (across["label"] != row["label"]), "label"]
            suggested.append(int(others.mode().iloc[0]))
        index = extra["position"].to_numpy()
        rows = _rows(index, np.asarray(labels, dtype=np.int64), np.asarray(suggested, dtype=np.int64),
                     np.asarray(probabilities), ids, class_names, DUPLICATE)
        rows.insert(0, "rank", np.arange(len(table) + 1, len(table) + len(rows) + 1))
        table = pd.concat([table, rows[ISSUE_COLUMNS]], ignore_index=True)
    return table


def join_training_dynamics(issues: pd.DataFrame, dynamics: pd.DataFrame | None) -> pd.DataFrame:
    """Add the trained model's view of each suspect: ``training_aum`` (its area under the margin while
    the model trained on the image; empty for images it did not train on, or without dynamics) and
    ``dynamics_agree`` (True where the training dynamics flagged the image too)."""
    table = issues.copy()
    if dynamics is None or not len(dynamics):
        table["training_aum"], table["dynamics_agree"] = np.nan, False
        return table
    by_id = dynamics.set_index(dynamics["id"].astype(str))
    table["training_aum"] = table["id"].astype(str).map(by_id["aum"]).astype(float)
    table["dynamics_agree"] = table["id"].astype(str).map(by_id["flagged"]).fillna(False).astype(bool)
    return table


def score_against_noise(flagged_ids: pd.Series | list[str], flipped_ids: pd.Series | list[str]) -> dict[str, float]:
    """Precision and recall of the flagged images against the labels known to be flipped.

    Flagging at random scores a precision equal to the noise rate.
    """
    flagged, flipped = set(map(str, flagged_ids)), set(map(str, flipped_ids))
    hits = len(flagged & flipped)
    return {
        "flagged": len(flagged),
        "flipped": len(flipped),
        "true_positives": hits,
        "precision": hits / len(flagged) if flagged else 0.0,
        "recall": hits / len(flipped) if flipped else 0.0,
    }
