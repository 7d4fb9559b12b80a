"""Figures a person would rather look at than read. Matplotlib, Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def class_distribution_figure(distribution: pd.DataFrame) -> plt.Figure:
    """Bar chart of images per class, largest first (the seed's Figure 1).

    ``distribution`` has columns class, train, val, test, total.
    """
    table = distribution.sort_values("total", ascending=False)
    n = len(table)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * n + 2), 4.5), layout="constrained")
    bottom = None
    for subset, colour in (("train", "tab:blue"), ("val", "tab:orange"), ("test", "tab:green")):
        ax.bar(range(n), table[subset], bottom=bottom, color=colour, label=subset, width=0.85)
        bottom = table[subset] if bottom is None else bottom + table[subset].to_numpy()
    ax.set_xticks(range(n), table["class"], rotation=90, fontsize=max(5, min(10, 600 // max(n, 1))))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("images")
    ax.set_title(
        f"Images per class: {int(table['total'].sum())} in {n} classes, "
        f"{int(table['total'].min())}-{int(table['total'].max())} a class"
    )
    ax.legend(loc="upper right")
    return fig
