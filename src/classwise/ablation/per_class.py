"""The ladder read per class: a class x step heatmap of F1, and for each step the classes it helped or hurt by more
than the noise of their held-out subset, as one self-contained page logged on the parent run.

When is a change more than noise? A class's F1 on a subset of n images moves by chance about as much as a share
measured on n images does. Two steps measured on the same n images differ by more than chance when the change
exceeds twice the standard error of a difference of two shares, at the worst case p = 0.5:
``2 * sqrt(2 * 0.25 / n)`` -- 0.45 for 10 images, 0.20 for 50, 0.14 for 100. It is a deliberately plain rule:
a class named as helped or hurt moved by more than its sample can explain, and small classes need large changes.
"""

from __future__ import annotations

import html
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from classwise.ablation.summary import GROUP_COLUMNS, StepOutcome  # noqa: E402
from classwise.evaluation.report_page import STYLE, png_data_uri  # noqa: E402

SUBSET = "val"  # the subset the ladder is read on, as the seed's F1 analysis
LADDER_COLUMNS = ["step", "changes", "status", "train_accuracy", "val_accuracy", "test_accuracy", "val_macro_f1",
                  "test_macro_f1", "classes_under_f1", "f1_size_r", "wall_seconds"]


def noise_margin(n_images: int) -> float:
    """The F1 change a class of ``n_images`` held-out images needs before it counts as more than chance."""
    return 2 * math.sqrt(2 * 0.25 / n_images) if n_images > 0 else math.inf


def f1_by_step(outcomes: list[StepOutcome], subset: str = SUBSET) -> tuple[pd.DataFrame, pd.Series]:
    """F1 of every class (rows, weakest on average first) at every finished step (columns, ladder order), and
    each class's number of ``subset`` images."""
    columns, support = {}, {}
    for o in outcomes:
        if o.per_class is None:
            continue
        rows = o.per_class[o.per_class["subset"] == subset]
        columns[o.step] = rows.set_index("class")["f1"]
        support.update(rows.set_index("class")["support"].to_dict())
    table = pd.DataFrame(columns)
    if table.empty:
        return table, pd.Series(dtype=int)
    table = table.loc[table.mean(axis=1).sort_values(kind="stable").index]
    return table, pd.Series(support).reindex(table.index).fillna(0).astype(int)


def step_changes(table: pd.DataFrame, support: pd.Series) -> list[dict]:
    """For each step after the first, the classes whose F1 rose or fell past their noise margin since the
    step before it."""
    out = []
    steps = list(table.columns)
    for before, after in zip(steps, steps[1:]):
        delta = (table[after] - table[before]).dropna()
        margin = support.reindex(delta.index).map(noise_margin)
        helped = delta[delta > margin].sort_values(ascending=False)
        hurt = delta[delta < -margin].sort_values()
        out.append({"step": after, "against": before, "helped": helped.round(3).to_dict(),
                    "hurt": hurt.round(3).to_dict()})
    return out


def heatmap(table: pd.DataFrame, subset: str = SUBSET) -> plt.Figure:
    """Classes down, steps across, F1 as colour and number (numbers left out past 40 classes)."""
    n_classes, n_steps = table.shape
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * n_steps, 1.2 + 0.24 * n_classes), layout="constrained")
    image = ax.imshow(table.to_numpy(dtype=float), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(n_steps), table.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n_classes), table.index, fontsize=7 if n_classes > 40 else 8)
    if n_classes <= 40:
        for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.6, label=f"{subset} F1")
    ax.set_title(f"{subset} F1 of each class at each step (weakest on average at the top)", fontsize=9)
    return fig


def _names(changes: dict) -> str:
    return ", ".join(f"{html.escape(str(c))} ({d:+.2f})" for c, d in changes.items()) or "none"


def ablation_page(title: str, caveat: str, outcomes: list[StepOutcome], summary: pd.DataFrame) -> str:
    """The page: the ladder table, the per-group table, the heatmap, and each step's helped and hurt classes."""
    table, support = f1_by_step(outcomes)
    ladder = summary[LADDER_COLUMNS].rename(columns=lambda c: c.replace("_", " "))
    groups = summary[["step", "status", *GROUP_COLUMNS]].rename(columns=lambda c: c.replace("_", " "))
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="muted">{html.escape(caveat)}</p>' if caveat else "",
             "<h2>The ladder</h2>", ladder.to_html(index=False, na_rep="-", border=0, float_format="{:.3f}".format),
             "<h2>Head, medium and tail classes (test)</h2>",
             groups.to_html(index=False, na_rep="-", border=0, float_format="{:.3f}".format)]
    if table.empty:
        parts.append("<p>No step finished, so there is nothing to compare per class.</p>")
    else:
        parts.append(f'<h2>F1 per class and step ({SUBSET})</h2><img id="heatmap" alt="class x step F1" '
                     f'src="{png_data_uri(heatmap(table))}" style="max-width:100%">')
        parts.append(f"<h2>What each step changed, class by class ({SUBSET})</h2>"
                     "<p>A class is named when its F1 moved by more than twice the standard error of a "
                     "difference of two shares on its own number of images (worst case p = 0.5): 0.45 for "
                     "10 images, 0.20 for 50.</p><ul>")
        for change in step_changes(table, support):
            parts.append(f"<li><b>{html.escape(change['step'])}</b> against {html.escape(change['against'])}: "
                         f"helped {_names(change['helped'])}; hurt {_names(change['hurt'])}.</li>")
        parts.append("</ul>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE} table{{margin-bottom:8px}} td:nth-child(2){{max-width:320px}}</style></head>"
            f"<body>{''.join(parts)}</body></html>")
