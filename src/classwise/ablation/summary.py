"""The ladder's summary: one row a step (the seed's table), as CSV, Markdown and a bar chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Per-group numbers of the test subset (classwise.evaluation.groups), beside the F1-vs-size r.
GROUP_COLUMNS = ["test_head_top1", "test_medium_top1", "test_tail_top1", "test_tail_macro_f1"]
COLUMNS = [
    "step", "changes", "status", "train_accuracy", "val_accuracy", "test_accuracy", "val_macro_f1",
    "test_macro_f1", *GROUP_COLUMNS, "classes_under_f1", "f1_size_r", "wall_seconds", "run_id", "error",
]


@dataclass
class StepOutcome:
    step: str  # run name
    changes: str  # what the step changed, in words
    status: str  # FINISHED or FAILED, as in MLflow
    wall_seconds: float  # the step's Kedro run, end to end
    run_id: str | None  # its MLflow run
    metrics: dict[str, Any] | None = None  # the step's metrics.json (None when it failed)
    f1_size: dict[str, Any] | None = None  # the step's f1_size_correlation.json
    error: str = ""  # why it failed, one line
    per_class: pd.DataFrame | None = None  # the step's per_class_report.csv (None when it failed)


def _get(d: dict | None, *keys: str) -> float:
    for key in keys:
        if not isinstance(d, dict) or d.get(key) is None:
            return math.nan
        d = d[key]
    return float(d)  # type: ignore[arg-type]


def summary_table(outcomes: list[StepOutcome]) -> pd.DataFrame:
    """One row a step; metrics of a failed step are empty, never guessed."""
    rows = []
    for o in outcomes:
        below = o.f1_size.get("classes_below_threshold") if o.f1_size else None
        rows.append(
            {
                "step": o.step,
                "changes": o.changes,
                "status": o.status,
                "train_accuracy": _get(o.metrics, "train", "top1"),
                "val_accuracy": _get(o.metrics, "val", "top1"),
                "test_accuracy": _get(o.metrics, "test", "top1"),
                "val_macro_f1": _get(o.metrics, "val", "macro_f1"),
                "test_macro_f1": _get(o.metrics, "test", "macro_f1"),
                **{c: _get(o.metrics, "test", c.removeprefix("test_")) for c in GROUP_COLUMNS},
                "classes_under_f1": len(below) if below is not None else pd.NA,
                "f1_size_r": _get(o.f1_size, "pearson_r"),
                "wall_seconds": round(o.wall_seconds, 1),
                "run_id": o.run_id or "",
                "error": o.error,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["classes_under_f1"] = table["classes_under_f1"].astype("Int64")
    return table


def _cell(value: Any, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(table: pd.DataFrame, title: str, f1_threshold: float = 0.5, caveat: str = "") -> str:
    """The table as GitHub Markdown, the way the seed reports it (accuracies in percent), under its caveat."""
    headers = [
        "step", "what changed", "train acc", "val acc", "test acc", "val macro-F1", "test macro-F1",
        "test head acc", "test medium acc", "test tail acc", "test tail macro-F1",
        f"classes under F1 {f1_threshold:g}", "F1-vs-size r", "wall time (s)", "status",
    ]
    lines = [f"# {title}", "", *([f"> {caveat}", ""] if caveat else []),
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in table.itertuples(index=False):
        cells = [
            _cell(row.step, 0), _cell(row.changes, 0),
            *(_cell(v * 100, 1) for v in (row.train_accuracy, row.val_accuracy, row.test_accuracy)),
            _cell(row.val_macro_f1, 3), _cell(row.test_macro_f1, 3),
            *(_cell(v * 100, 1) for v in (row.test_head_top1, row.test_medium_top1, row.test_tail_top1)),
            _cell(row.test_tail_macro_f1, 3), _cell(row.classes_under_f1, 0),
            _cell(row.f1_size_r, 2), _cell(row.wall_seconds, 1),
            row.status if not row.error else f"{row.status}: {_cell(row.error, 0)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in percent; train accuracy as seen during the last epoch (augmented batches)."]
    return "\n".join(lines) + "\n"


def summary_plot(table: pd.DataFrame, title: str) -> Figure:
    """Train / val / test accuracy of each step side by side; failed steps are labelled."""
    steps = table["step"].tolist()
    x = np.arange(len(steps))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(steps) + 2), 4.5))
    width = 0.27
    for i, (column, label) in enumerate(
        [("train_accuracy", "train"), ("val_accuracy", "val"), ("test_accuracy", "test")]
    ):
        values = table[column].to_numpy(dtype=float) * 100
        ax.bar(x + (i - 1) * width, np.nan_to_num(values), width, label=label)
    for xi, status in zip(x, table["status"]):
        if status != "FINISHED":
            ax.text(xi, 2, status, ha="center", va="bottom", rotation=90, color="crimson", fontsize=9)
    ax.set_xticks(x, steps, rotation=35, ha="right")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
