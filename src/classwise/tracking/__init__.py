"""MLflow glue that the catalog and kedro-mlflow do not already give."""

from __future__ import annotations

import mlflow


def log_epoch(row: dict[str, float]) -> None:
    """Log one training-history row as metrics with step = epoch, live, if a run is open.

    kedro-mlflow opens the run before the pipeline starts; logging each epoch as it
    ends lets the MLflow UI draw the curves while a long training runs.
    """
    if mlflow.active_run() is None:
        return
    epoch = int(row["epoch"])
    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch"}, step=epoch)
