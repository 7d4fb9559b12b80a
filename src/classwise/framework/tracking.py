"""MLflow glue that the catalog and kedro-mlflow do not already give."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import mlflow
from mlflow.entities import Metric


CURVES = "curves/"  # MLflow's run page shows its chart sections in alphabetical order: the curves first


def log_epoch(row: dict[str, float], prefix: str = CURVES) -> None:
    """Log one training-history row as metrics with step = epoch, live, if a run is open.

    kedro-mlflow opens the run before the pipeline starts; logging each epoch as it
    ends lets the MLflow UI draw the curves while a long training runs. ``prefix``
    puts them in the first chart section (``curves/train_loss``) and keeps several
    models' curves apart in one run (``curves/fold1.``).
    """
    if mlflow.active_run() is None:
        return
    epoch = int(row["epoch"])
    mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in row.items() if k != "epoch"}, step=epoch)


def epoch_logger() -> Callable[[dict[str, float]], None]:
    """``log_epoch`` bound to the run active now, callable from any thread.

    MLflow's active run belongs to the thread that opened it; a data-parallel training
    (classwise.training.distributed) reports its epochs from a thread of its own.
    """
    run = mlflow.active_run()
    if run is None:
        return log_epoch
    client, run_id = mlflow.MlflowClient(), run.info.run_id

    def log(row: dict[str, float]) -> None:
        stamp, epoch = int(time.time() * 1000), int(row["epoch"])
        client.log_batch(run_id, metrics=[Metric(f"{CURVES}{k}", float(v), stamp, epoch)
                                          for k, v in row.items() if k != "epoch"])

    return log


def as_logged_metrics(values: Mapping[str, float | None]) -> dict[str, dict[str, float]]:
    """Single values in the shape kedro-mlflow's MlflowMetricsHistoryDataset logs (step 0).

    MLflow metrics cannot be null, so an undefined value (None) is left out, not logged as 0.
    """
    return {name: {"value": float(value), "step": 0} for name, value in values.items() if value is not None}
