"""Figures a person would rather look at than read. Matplotlib, Agg backend.

Every figure is sized by the number of classes so that 91 long class names stay
legible: ticks carry every name in a small font, never a thinned subset.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402


def _tick_fontsize(n: int) -> float:
    return max(5, min(10, 600 // max(n, 1)))


def _short(name: str, width: int) -> str:
    """Cut from the middle: class names often differ only at their end ('..._07', '..._17')."""
    if len(name) <= width:
        return name
    tail = (width - 1) // 2
    return name[: width - 1 - tail] + "…" + name[-tail:]


def class_distribution_figure(distribution: pd.DataFrame) -> plt.Figure:
    """Bar chart of images per class, largest first (the seed's Figure 1).

    ``distribution`` has columns class, train, val, test, total.
    """
    table = distribution.sort_values("total", ascending=False)
    n = len(table)
    longest = int(table["class"].astype(str).str.len().max()) if n else 0
    # Rotated names take height; growing the figure with them keeps the bars from shrinking.
    height = 3.5 + 0.055 * min(longest, 40) * _tick_fontsize(n) / 6
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * n + 2), height), layout="constrained")
    bottom = None
    for subset, colour in (("train", "tab:blue"), ("val", "tab:orange"), ("test", "tab:green")):
        ax.bar(range(n), table[subset], bottom=bottom, color=colour, label=subset, width=0.85)
        bottom = table[subset] if bottom is None else bottom + table[subset].to_numpy()
    ax.set_xticks(range(n), [_short(str(c), 40) for c in table["class"]], rotation=90, fontsize=_tick_fontsize(n))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("images")
    ax.set_title(
        f"Images per class: {int(table['total'].sum())} in {n} classes, "
        f"{int(table['total'].min())}-{int(table['total'].max())} a class"
    )
    ax.legend(loc="upper right")
    return fig


def f1_vs_size_figure(report: pd.DataFrame, correlation: dict, max_listed: int = 40) -> plt.Figure:
    """Per-class F1 against train class size, with the least-squares fit and r in the legend.

    ``report`` is the per-class report (the rows of ``correlation['subset']`` are drawn);
    ``correlation`` is :func:`classwise.evaluation.correlation.f1_size_correlation`'s result.
    Classes under the F1 threshold are red, numbered, and named in a list beside the plot:
    a list stays legible where labels on crowded points would overlap.
    """
    subset = correlation["subset"]
    threshold = float(correlation["f1_threshold"])
    rows = report[report["subset"] == subset]
    size = rows["train_count"].to_numpy(dtype=float)
    f1 = rows["f1"].to_numpy(dtype=float)
    low = rows[rows["f1"] < threshold].sort_values(["f1", "class"])

    fig, (ax, side) = plt.subplots(
        1, 2, figsize=(11, 6), width_ratios=[3, 1.25], layout="constrained"
    )
    is_low = f1 < threshold
    ax.scatter(size[~is_low], f1[~is_low], s=22, alpha=0.6, color="tab:blue",
               label=f"F1 ≥ {threshold:g} ({int((~is_low).sum())})")
    ax.scatter(size[is_low], f1[is_low], s=28, alpha=0.9, color="tab:red", label=f"F1 < {threshold:g} ({len(low)})")
    ax.axhline(threshold, color="tab:red", linestyle=":", linewidth=1)
    if correlation.get("defined") and correlation.get("pearson_r") is not None:
        slope, intercept = np.polyfit(size, f1, 1)
        xs = np.linspace(size.min(), size.max(), 50)
        label = f"least-squares fit, Pearson r = {correlation['pearson_r']:.2f}"
        if correlation.get("pearson_r_ci_low") is not None:
            level = int(round(100 * correlation.get("ci_level", 0.95)))
            label += f"\n{level}% CI {correlation['pearson_r_ci_low']:.2f} to {correlation['pearson_r_ci_high']:.2f}"
        label += f", p = {correlation['pearson_p']:.2g}"
        if correlation.get("spearman_rho") is not None:
            label += f"; Spearman ρ = {correlation['spearman_rho']:.2f}"
        ax.plot(xs, slope * xs + intercept, color="black", linewidth=1.5, label=label)
        title = f"F1 vs train class size ({subset}, {len(rows)} classes)"
    else:
        title = (
            f"F1 vs train class size ({subset}, {len(rows)} classes)\n"
            "correlation undefined: F1 or class size is the same for every class"
        )
    for number, (_, row) in enumerate(low.head(max_listed).iterrows(), start=1):
        ax.annotate(
            # Alternating above and below keeps neighbours' numbers apart.
            str(number), (row["train_count"], row["f1"]), xytext=(3, 3 if number % 2 else -9),
            textcoords="offset points",
            fontsize=7, color="tab:red",
        )
    ax.set_xlabel("training images in the class")
    ax.set_ylabel(f"F1 ({subset})")
    ax.set_ylim(-0.03, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    side.axis("off")
    if len(low):
        lines = [
            f"{i:>2}. {_short(str(r['class']), 40)}  F1 {r['f1']:.2f}, n {int(r['train_count'])}"
            for i, (_, r) in enumerate(low.head(max_listed).iterrows(), start=1)
        ]
        if len(low) > max_listed:
            lines.append(f"… and {len(low) - max_listed} more in per_class_report.csv")
        header = f"Classes under F1 {threshold:g}, lowest first:"
        side.text(0, 1, "\n".join([header, *lines]), va="top", ha="left", fontsize=7.5, family="monospace",
                  transform=side.transAxes)
    else:
        side.text(0, 1, f"No class under F1 {threshold:g}.", va="top", ha="left", fontsize=9,
                  transform=side.transAxes)
    return fig


def confusion_matrix_figure(
    rates: np.ndarray, class_names: list[str], order: np.ndarray | None = None, subset: str = "test"
) -> plt.Figure:
    """Heatmap of the row-normalised confusion matrix, classes in ``order``.

    Off-diagonal cells are coloured on their own scale (white = never), so that a 10% mix-up
    shows instead of vanishing next to a diagonal of 90%s; the diagonal (recall) is grey.
    """
    n = len(class_names)
    order = np.arange(n) if order is None else np.asarray(order)
    r = rates[np.ix_(order, order)]
    names = [_short(class_names[i], 40) for i in order]
    # Zero cells are masked too, so that "never confused" is plain white.
    off = np.ma.masked_where(np.eye(n, dtype=bool) | (r == 0), r)
    diagonal = np.ma.masked_where(~np.eye(n, dtype=bool), r)
    vmax = float(off.max()) if off.count() and off.max() > 0 else 1.0

    side = max(5.0, 0.14 * n + 3)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
    ax.imshow(diagonal, cmap=ListedColormap(plt.get_cmap("Greys")(np.linspace(0.15, 0.6, 256))),
              vmin=0, vmax=1, interpolation="nearest")
    image = ax.imshow(off, cmap="Reds", vmin=0, vmax=vmax, interpolation="nearest")
    fontsize = _tick_fontsize(n)
    ax.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), names, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # Faint cell borders let the eye follow a row across 91 columns.
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.92", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if r[i, j] > 0:
                    dark = (i == j and r[i, j] > 0.5) or (i != j and r[i, j] > 0.6 * vmax)
                    ax.text(j, i, f"{r[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    confused = int(off.count())
    ax.set_title(
        f"Confusion matrix ({subset}, rows sum to 1; {confused} confused pairs)\n"
        "classes ordered so that confusable ones sit together; diagonal (recall) in grey",
        fontsize=10,
    )
    bar = fig.colorbar(image, ax=ax, shrink=min(0.6, 6 / side + 0.1), pad=0.01)
    bar.set_label("share of the true class predicted as the column class")
    return fig


def training_curves_figure(history: pd.DataFrame) -> plt.Figure:
    """Loss, accuracy and learning rate per epoch; the best validation epoch is marked."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    epochs = history["epoch"].to_numpy()
    marker = "o" if len(history) <= 30 else None
    panels = (
        ("loss", ["train_loss", "val_loss"], "loss"),
        ("accuracy", ["train_accuracy", "val_accuracy"], "top-1 accuracy"),
        ("learning rate", ["lr"], "lr"),
    )
    for ax, (title, columns, ylabel) in zip(axes, panels):
        for column in columns:
            if column in history:
                ax.plot(epochs, history[column], marker=marker, markersize=3, label=column.replace("_", " "))
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if "lr" in history and (history["lr"] > 0).all() and history["lr"].nunique() > 1:
        axes[2].set_yscale("log")
    if "val_accuracy" in history and history["val_accuracy"].notna().any():  # all NaN: trained without val
        best = int(history.loc[history["val_accuracy"].idxmax(), "epoch"])
        for ax in axes[:2]:
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1,
                       label=f"best val epoch ({best})" if ax is axes[1] else None)
    axes[1].set_ylim(0, 1.02)
    for ax in axes[:2]:
        ax.legend(fontsize=8)
    fig.suptitle(f"Training curves ({len(history)} epochs)")
    return fig


def image_grid_figure(images: np.ndarray, titles: list[str], suptitle: str, empty_text: str,
                      ncols: int = 6) -> plt.Figure:
    """Images in a grid, each with its (short, multi-line) title; ``empty_text`` when there are none."""
    n = len(images)
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 1.5), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", fontsize=12)
        return fig
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols, 2.9 * nrows + 0.4), layout="constrained",
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], interpolation="nearest")
        ax.set_title(titles[k], fontsize=7.5, loc="left")
    fig.suptitle(suptitle)
    return fig


def recall_vs_size_figure(runs: dict[str, tuple[np.ndarray, np.ndarray]], groups: np.ndarray | None = None,
                          subset: str = "test") -> plt.Figure:
    """Per-class recall against train class size, one panel a run (e.g. two remedies side by side).

    ``runs`` maps a run's name to (train counts, per-class recall); ``groups`` (head / medium /
    tail per class, as classwise.evaluation.groups gives) colours the points.
    """
    colours = {"head": "tab:blue", "medium": "tab:orange", "tail": "tab:red"}
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 4), sharey=True, squeeze=False)
    for ax, (name, (counts, recall)) in zip(axes[0], runs.items()):
        counts, recall = np.asarray(counts, dtype=float), np.asarray(recall, dtype=float)
        if groups is None:
            ax.scatter(counts, recall, s=14, alpha=0.7)
        else:
            for g, colour in colours.items():
                mask = np.asarray(groups) == g
                ax.scatter(counts[mask], recall[mask], s=14, alpha=0.7, color=colour,
                           label=f"{g} (mean {recall[mask].mean():.2f})" if mask.any() else g)
            ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
        if len(counts) >= 2 and np.ptp(counts) > 0:
            slope, intercept = np.polyfit(counts, recall, 1)
            xs = np.array([counts.min(), counts.max()])
            ax.plot(xs, slope * xs + intercept, color="grey", linewidth=1)
        ax.set_title(f"{name}: mean recall {recall.mean():.2f}", fontsize=10)
        ax.set_xlabel("train images of the class")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{subset} recall per class")
    axes[0][0].set_ylim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def misclassified_figure(
    images: np.ndarray,
    true_names: list[str],
    predicted_names: list[str],
    confidences: np.ndarray,
    subset: str = "test",
    ncols: int = 6,
    captions: tuple[str, str] = ("true", "pred"),
    title: str | None = None,
) -> plt.Figure:
    """A grid of misclassified images, most confident first, each with its true and predicted class.

    ``captions`` and ``title`` let the same grid show other pairs of classes (given and suggested).
    """
    titles = [
        f"{captions[0]}: {_short(true, 32)}\n{captions[1]}: {_short(predicted, 26)} ({confidence:.0%})"
        for true, predicted, confidence in zip(true_names, predicted_names, confidences)
    ]
    empty = f"{title}: none." if title else f"No misclassified images in {subset}."
    return image_grid_figure(images, titles, title or f"Most confidently misclassified {subset} images ({len(images)})",
                             empty, ncols)


def predictions_figure(images: np.ndarray, files: list[str], classes: list[str], probabilities: np.ndarray,
                       total: int, ncols: int = 6, model: str | None = None) -> plt.Figure:
    """A contact sheet of new images, each with its file name and top class; ``total`` images were predicted
    by ``model`` (named under the title)."""
    titles = [f"{_short(file, 30)}\n{_short(name, 26)} ({p:.0%})" for file, name, p in zip(files, classes, probabilities)]
    shown = f"first {len(images)} of {total}" if len(images) < total else f"{total}"
    title = f"Predictions for new images ({shown})"
    if model:
        title += "\nby " + textwrap.fill(model, 110, subsequent_indent="   ")
    return image_grid_figure(images, titles, title, "No image could be predicted.", ncols)
