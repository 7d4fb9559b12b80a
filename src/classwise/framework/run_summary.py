"""The few lines a ``kedro run`` ends on, and the same as the MLflow run's description.

Built from what the run wrote to the catalog (metrics, F1 vs class size, split), so
the console and the MLflow description say exactly what the files say.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from classwise.evaluation.per_class import WEAKEST_FIRST

log = logging.getLogger(__name__)

RULE = "─" * 72


@dataclass
class RunSummary:
    console: str  # the closing block printed to the console
    markdown: str  # the MLflow run description


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _outputs(pipeline) -> set[str]:
    return set(pipeline.all_outputs()) if pipeline is not None else set()


def _load(catalog, name: str, produced: set[str]) -> Any:
    if name not in produced:
        return None
    try:
        return catalog.load(name)
    except Exception as exc:  # the summary must never turn a finished run into a failed one
        log.debug("Summary: could not load %s (%s).", name, exc)
        return None


def weakest_lines(report, subset: str, n: int = 3) -> list[str]:
    """The ``n`` classes with the lowest F1 on ``subset``: F1, train images and the class most taken for."""
    rows = report[report["subset"] == subset].sort_values(WEAKEST_FIRST, kind="stable").head(n)
    if rows.empty:
        return []
    out = [f"weakest {len(rows)} ({subset} F1, train images, most often taken for):"]
    for row in rows.to_dict("records"):
        partner = row.get("confused_with") or ""
        rate = row.get("confused_rate") or 0.0
        taken = f"{partner} ({rate:.0%} of its {subset} images)" if partner else "no other class"
        out.append(f"  {row['class']:<16} F1 {row['f1']:.2f}   {int(row['train_count']):>5} train   {taken}")
    return out


def _run_link(run_id: str, tracking_uri: str | None) -> tuple[str, str]:
    """The run id line and the UI address of the run (for the default local UI when the store is SQLite)."""
    try:
        from mlflow.tracking import MlflowClient

        experiment_id = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    except Exception:  # pragma: no cover - the store was readable a moment ago
        experiment_id = "0"
    remote = tracking_uri and tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri.rstrip("/") if remote else "http://127.0.0.1:5000"
    # MLflow 3.17 opens a link in its GenAI view unless the link asks for the model-training one.
    return run_id, f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def run_summary(catalog, pipeline, params: dict[str, Any], run_id: str | None,
                tracking_uri: str | None) -> RunSummary | None:
    """The closing summary of a run, or None when the pipeline produced nothing worth summarising."""
    produced = _outputs(pipeline)
    metrics = _load(catalog, "metrics", produced)
    correlation = _load(catalog, "f1_size_correlation", produced)
    split = _load(catalog, "split", produced) if metrics is None else None
    lines: list[str] = []
    if metrics:
        for subset in ("test", "val"):
            if subset in metrics:
                m = metrics[subset]
                lines.append(f"{subset:<5} top-1 {_fmt(m.get('top1'))}   macro-F1 {_fmt(m.get('macro_f1'))}   "
                             f"top-5 {_fmt(m.get('top5'))}   ({m.get('n_images', '?')} images)")
    low: list = []
    if correlation:
        low = correlation.get("classes_below_threshold") or []
        names = ", ".join(f"{c['class']} ({c['f1']:.2f})" for c in low[:8]) + (" ..." if len(low) > 8 else "")
        lines.append(f"classes under F1 {correlation.get('f1_threshold', 0.5):.2f} ({correlation.get('subset')}): "
                     f"{len(low)}{': ' + names if low else ''}")
        report = _load(catalog, "per_class_report", produced)
        if report is not None:
            lines.extend(weakest_lines(report, correlation.get("subset", "val")))
        interval = ""
        if correlation.get("pearson_r_ci_low") is not None:
            interval = f" (95% CI {_fmt(correlation['pearson_r_ci_low'], 2)} to " \
                       f"{_fmt(correlation['pearson_r_ci_high'], 2)})"
        lines.append(f"F1 vs class size: Pearson r {_fmt(correlation.get('pearson_r'), 2)}{interval}, "
                     f"Spearman rho {_fmt(correlation.get('spearman_rho'), 2)}, "
                     f"{correlation.get('n_classes')} classes")
    dynamics = _load(catalog, "training_dynamics", produced)
    if dynamics is not None and len(dynamics):
        flagged = int(dynamics["flagged"].sum())
        lines.append(f"suspect labels: {flagged} of {len(dynamics)} training images "
                     f"({100 * flagged / len(dynamics):.1f}%) by their training dynamics, lowest margin first in "
                     f"data/07_model_output/training_dynamics.parquet")
    if split is not None:
        counts = split["subset"].value_counts()
        lines.append(f"split: {len(split)} images in {split['label'].nunique()} classes: "
                     + ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ("train", "val", "test")))
    if not lines:
        return None
    folder = "data/08_reporting/" if metrics or correlation else "data/03_primary/"
    lines.append(f"reports: {folder}" + (" (report.html: one page for all of it)" if "report_page" in produced else ""))
    if low and "class_diagnosis" not in produced:
        lines.append(f"next: `kedro run --pipelines=diagnose` tests why the {len(low)} weak "
                     f"class{'es are' if len(low) > 1 else ' is'} weak (too few images, look-alikes, label errors)")
    markdown_lines = list(lines)
    if run_id:
        run_id, url = _run_link(run_id, tracking_uri)
        lines.append(f"MLflow run {run_id}")
        lines.append(f"  {url}  (start the UI with `make mlflow-ui`)")
    model = params.get("train", {}).get("model") if metrics else None
    title = "Classwise: run finished" + (f" ({model})" if model else "")
    console = "\n".join([RULE, title, *("  " + line for line in lines), RULE])
    # An indented line (a weakest class) is an item under the line before it.
    markdown = "\n".join(f"  - {line.strip()}" if line.startswith("  ") else f"- {line}" for line in markdown_lines)
    return RunSummary(console=console, markdown=markdown)
