"""The data audit: cleanlab's Datalab on the out-of-fold probabilities and the fold models' embeddings.

One audit finds label issues (from the probabilities), near-duplicates and outliers (from the
embeddings), and scores every class's label quality. A near-duplicate pair filed under two
classes is the likeliest kind of mislabel, so those pairs come first among the near-duplicates.
"""

from __future__ import annotations

import logging
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from classwise.diagnosis.issues import _source_file  # noqa: E402
from classwise.evaluation.figures import _short  # noqa: E402

log = logging.getLogger(__name__)

ISSUE_KINDS = ("label", "near_duplicate", "outlier")
AUDIT_COLUMNS = ["issue", "rank", "id", "source_file", "given_class", "score", "other_id", "other_class",
                 "across_classes"]
CLASS_COLUMNS = ["class", "label_quality", "label_issues", "near_duplicates", "outliers", "overlaps_most_with",
                 "overlap_joint_probability"]


# cleanlab's label filter forks a process pool by default; a fork of a process whose torch/OpenMP threads
# hold locks can deadlock (it hung the test suite once), so it runs in this process, as find_issues does.
ONE_PROCESS = {"label": {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}}}


def run_datalab(labels: np.ndarray, probabilities: np.ndarray, embeddings: np.ndarray):
    """cleanlab's Datalab with the three issue kinds the inputs support; returns the Datalab."""
    from cleanlab import Datalab  # imported here: it pulls in HuggingFace datasets (~1 s)

    # Integer labels: Datalab sorts the label values and takes the probability columns in that order, which
    # for 0..C-1 is ours (every class has images: the folds need them); class names are mapped back after.
    lab = Datalab(data={"label": np.asarray(labels, dtype=np.int64)}, label_name="label", verbosity=0)
    with warnings.catch_warnings():  # Datalab warns about its own defaults on small sets; the table says it all
        warnings.simplefilter("ignore")
        lab.find_issues(pred_probs=np.asarray(probabilities, dtype=np.float64),
                        features=np.asarray(embeddings, dtype=np.float32),
                        issue_types={**{kind: {} for kind in ISSUE_KINDS}, **ONE_PROCESS})
    return lab


def audit_tables(lab, ids: list[str], labels: np.ndarray, class_names: list[str]) -> tuple[pd.DataFrame,
                                                                                              pd.DataFrame]:
    """(one row an image and issue kind, most severe first within a kind; one row a class, worst first)."""
    issues = lab.get_issues()
    names = np.asarray(class_names, dtype=object)
    labels = np.asarray(labels, dtype=np.int64)
    nearest = np.asarray(lab.get_info("near_duplicate")["nearest_neighbor"], dtype=np.int64)
    tables = []
    for kind in ISSUE_KINDS:
        rows = np.flatnonzero(issues[f"is_{kind}_issue"].to_numpy())
        score = issues[f"{kind}_score"].to_numpy()[rows]
        table = pd.DataFrame({
            "issue": kind,
            "id": [ids[i] for i in rows],
            "source_file": [_source_file(ids[i]) for i in rows],
            "given_class": names[labels[rows]],
            "score": score,
            "other_id": "",
            "other_class": "",
            "across_classes": False,
        })
        if kind == "label":
            predicted = np.asarray(lab.get_info("label")["predicted_label"], dtype=np.int64)[rows]
            table["other_class"] = names[predicted]
        if kind == "near_duplicate":
            partner = nearest[rows]
            table["other_id"] = [ids[j] for j in partner]
            table["other_class"] = names[labels[partner]]
            table["across_classes"] = labels[partner] != labels[rows]
        # Across classes first among near-duplicates, then the most severe (lowest score) first.
        order = ["across_classes", "score"] if kind == "near_duplicate" else ["score"]
        table = table.sort_values(order, ascending=[False, True][-len(order):], kind="stable")
        table.insert(1, "rank", np.arange(1, len(table) + 1))
        tables.append(table)
    audit = pd.concat(tables, ignore_index=True)[AUDIT_COLUMNS]

    by_quality = lab.get_info("label")["classes_by_label_quality"]
    per_class = pd.DataFrame({"class": names[by_quality["Class Index"].astype(int).to_numpy()],
                              "label_quality": by_quality["Label Quality Score"].astype(float)})
    counts = audit.groupby(["given_class", "issue"]).size().unstack(fill_value=0)
    for kind, column in (("label", "label_issues"), ("near_duplicate", "near_duplicates"), ("outlier", "outliers")):
        per_class[column] = per_class["class"].map(counts[kind] if kind in counts else {}).fillna(0).astype(int)
    overlap = lab.get_info("label")["overlapping_classes"]
    overlap = overlap[overlap["Num Overlapping Examples"] > 0]
    partner, joint = {}, {}
    for _, row in overlap.iterrows():  # most overlapping pairs first: keep each class's first partner
        a, b = names[int(row["Class Index A"])], names[int(row["Class Index B"])]
        p = float(row["Joint Probability"])
        for one, other in ((a, b), (b, a)):
            if one not in partner:
                partner[one], joint[one] = other, p
    per_class["overlaps_most_with"] = per_class["class"].map(partner).fillna("")
    per_class["overlap_joint_probability"] = per_class["class"].map(joint)
    per_class = per_class.sort_values("label_quality", kind="stable").reset_index(drop=True)
    return audit, per_class[CLASS_COLUMNS]


def audit_summary(audit: pd.DataFrame, images: int) -> dict[str, float]:
    """Headline counts for MLflow: each kind's images and share, near-duplicates across classes."""
    values: dict[str, float] = {}
    for kind in ISSUE_KINDS:
        n = int((audit["issue"] == kind).sum())
        values[f"{kind}_issues"] = n
        values[f"{kind}_share"] = n / images if images else 0.0
    values["near_duplicates_across_classes"] = int(
        ((audit["issue"] == "near_duplicate") & audit["across_classes"].astype(bool)).sum())
    return values


def audit_figure(images_by_id, audit: pd.DataFrame, per_kind: int = 8) -> plt.Figure:
    """A row of each kind's top images: label issues (given -> Datalab's class), near-duplicate pairs
    (side by side, across classes first), outliers."""
    rows = []
    for kind in ISSUE_KINDS:
        top = audit[audit["issue"] == kind]
        if kind == "near_duplicate":  # each pair once: (a, b) and (b, a) are both rows of the table
            pair = [tuple(sorted(p)) for p in zip(top["id"], top["other_id"])]
            top = top[~pd.Series(pair, index=top.index).duplicated()].head(per_kind // 2)
        else:
            top = top.head(per_kind)
        cells = []
        for _, r in top.iterrows():
            if kind == "label":
                cells.append((r["id"], f"given {_short(r['given_class'], 14)}\nlooks {_short(r['other_class'], 14)}"))
            elif kind == "near_duplicate":
                cells.append((r["id"], f"{_short(r['given_class'], 14)}\nnear-dup {r['score']:.2f}"))
                cells.append((r["other_id"], f"{_short(r['other_class'], 14)}\n"
                                             f"{'OTHER CLASS' if r['across_classes'] else 'same class'}"))
            else:
                cells.append((r["id"], f"{_short(r['given_class'], 14)}\noutlier {r['score']:.2f}"))
        rows.append((kind, cells))
    ncols = max([per_kind] + [len(c) for _, c in rows])
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.45 * ncols, 2.0 * len(rows)), squeeze=False)
    titles = {"label": "label issues", "near_duplicate": "near-duplicate pairs", "outlier": "outliers"}
    for r, (kind, cells) in enumerate(rows):
        counted = int((audit["issue"] == kind).sum())
        axes[r, 0].set_ylabel(f"{titles[kind]}\n({counted})", fontsize=9)
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(c < len(cells))
            if c < len(cells):
                image_id, caption = cells[c]
                ax.imshow(images_by_id(image_id))
                ax.set_title(caption, fontsize=7)
        if not cells:
            axes[r, 0].text(0.5, 0.5, "none", ha="center", va="center", fontsize=9)
    fig.suptitle("Data audit (cleanlab Datalab): each kind's top images, most severe first", fontsize=11)
    fig.tight_layout()
    return fig
