"""The few lines a ``kedro run`` ends on, and the same as the MLflow run's description.

Built from what the run wrote to the catalog (metrics, F1 vs class size, split), so
the console and the MLflow description say exactly what the files say.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

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


def _run_link(run_id: str, tracking_uri: str | None) -> tuple[str, str]:
    """The run id line and the UI address of the run (for the default local UI when the store is SQLite)."""
    try:
        from mlflow.tracking import MlflowClient

        experiment_id = MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    except Exception:  # pragma: no cover - the store was readable a moment ago
        experiment_id = "0"
    remote = tracking_uri and tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri.rstrip("/") if remote else "http://127.0.0.1:5000"
    return run_id, f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


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
    if correlation:
        low = correlation.get("classes_below_threshold") or []
        names = ", ".join(f"{c['class']} ({c['f1']:.2f})" for c in low[:8]) + (" ..." if len(low) > 8 else "")
        lines.append(f"classes under F1 {correlation.get('f1_threshold', 0.5):.2f} ({correlation.get('subset')}): "
                     f"{len(low)}{': ' + names if low else ''}")
        interval = ""
        if correlation.get("pearson_r_ci_low") is not None:
            interval = f" (95% CI {_fmt(correlation['pearson_r_ci_low'], 2)} to " \
                       f"{_fmt(correlation['pearson_r_ci_high'], 2)})"
        lines.append(f"F1 vs class size: Pearson r {_fmt(correlation.get('pearson_r'), 2)}{interval}, "
                     f"Spearman rho {_fmt(correlation.get('spearman_rho'), 2)}, "
                     f"{correlation.get('n_classes')} classes")
    if split is not None:
        counts = split["subset"].value_counts()
        lines.append(f"split: {len(split)} images in {split['label'].nunique()} classes: "
                     + ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ("train", "val", "test")))
    if not lines:
        return None
    folder = "data/08_reporting/" if metrics or correlation else "data/03_primary/"
    lines.append(f"reports: {folder}")
    markdown_lines = list(lines)
    if run_id:
        run_id, url = _run_link(run_id, tracking_uri)
        lines.append(f"MLflow run {run_id}")
        lines.append(f"  {url}  (start the UI with `make mlflow-ui`)")
    model = params.get("train", {}).get("model") if metrics else None
    title = "Classwise: run finished" + (f" ({model})" if model else "")
    console = "\n".join([RULE, title, *("  " + line for line in lines), RULE])
    markdown = "\n".join(f"- {line}" for line in markdown_lines)
    return RunSummary(console=console, markdown=markdown)
