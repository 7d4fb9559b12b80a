"""Figures of the diagnosis: the top label-issue suspects, and why the weakest classes are weak."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from classwise.evaluation.figures import _short, _tick_fontsize, misclassified_figure  # noqa: E402


def label_issues_figure(images: np.ndarray, issues: pd.DataFrame) -> plt.Figure:
    """The suspects as a grid: image, given → suggested class, and the self-confidence in the given class."""
    return misclassified_figure(
        images, issues["given_class"].tolist(), issues["suggested_class"].tolist(),
        issues["self_confidence"].to_numpy(), captions=("given", "suggested"),
        title=f"Top {len(issues)} label-issue suspects (confidence in the given class)",
    )


def class_diagnosis_figure(diagnosis: pd.DataFrame, f1_threshold: float, classes: int = 20) -> plt.Figure:
    """For the first ``classes`` rows (weak first): F1 out-of-fold and on val, the top look-alike's
    share of the class's images, and the share flagged as label issues."""
    rows = diagnosis.head(classes).iloc[::-1]  # the weakest at the top
    n = len(rows)
    y = np.arange(n)
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.32 * n + 1.8), sharey=True, layout="constrained",
                             width_ratios=[1.2, 1.3, 0.9])
    f1_ax, partner_ax, flag_ax = axes
    f1_ax.barh(y, rows["oof_f1"], color="tab:blue", alpha=0.75, label="out-of-fold F1 (all images)")
    f1_ax.scatter(rows["oof_val_f1"], y, color="tab:orange", zorder=3, s=18,
                  label="fold models' F1 on the val images")
    f1_ax.axvline(f1_threshold, color="tab:red", linestyle=":", linewidth=1)
    f1_ax.set_xlim(0, 1)
    f1_ax.set_xlabel("F1")
    f1_ax.legend(fontsize=7, loc="lower right")
    labels = [f"{_short(str(c), 28)} ({int(t)})" for c, t in zip(rows["class"], rows["train_count"])]
    f1_ax.set_yticks(y, labels, fontsize=_tick_fontsize(n))
    partner_ax.barh(y, rows["confused_with_rate"], color="tab:purple", alpha=0.75)
    for yi, rate, name in zip(y, rows["confused_with_rate"], rows["confused_with"]):
        partner_ax.text(rate, yi, f" {_short(str(name), 22)}", va="center", fontsize=7)
    partner_ax.set_xlim(0, min(1.0, max(0.1, float(rows["confused_with_rate"].max()) * 1.8)) if n else 1)
    partner_ax.set_xlabel("share of the class predicted as its top look-alike")
    flag_ax.barh(y, rows["flagged_share"], color="tab:gray")
    flag_ax.set_xlabel("share flagged as label issues")
    fig.suptitle(f"Why these classes are weak: the {n} lowest out-of-fold F1 (train count in brackets)")
    return fig
