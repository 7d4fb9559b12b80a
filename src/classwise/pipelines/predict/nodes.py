"""Nodes that use the trained model: predict new images, and log the MLflow Model after training.
Thin wrappers around classwise.serving."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from classwise.core.config import parse
from classwise.core.errors import ConfigError, DataError
from classwise.evaluation.figures import predictions_figure
from classwise.serving import PredictConfig, predict_path, predictor_from_model
from classwise.serving.logged_model import load_logged_predictor
from classwise.serving.predictor import predictor_from_saved_model
from classwise.serving.register import log_classwise_model
from classwise.training.lineage import describe_model, model_fingerprint
from classwise.data.sources import DataConfig, LabelledImages
from classwise.data.split import subset_index

log = logging.getLogger(__name__)


def predict_new_images(
    model: dict,
    predict_params: dict[str, Any],
    data_params: dict[str, Any],
    saved_mlflow_model_info: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, plt.Figure]:
    """Top-k classes for every image under ``predict.input``; the files not predicted, with their
    reason; a contact sheet. Uses ``predict.model_uri`` when set, else the saved model; either way
    the input size and normalisation are the model's own, not today's ``data`` parameters. The console, a
    ``model`` column and the contact sheet name the model that predicted (``saved_mlflow_model_info``, the
    last training run's MLflow Model, adds its registered version when it holds the same weights)."""
    cfg = parse(PredictConfig, predict_params, "predict")
    if cfg.input is None:
        raise ConfigError(
            "Parameter 'predict.input' is not set; point it at an image file or a folder, e.g. "
            "kedro run --pipelines=predict --params=predict.input=path/to/images."
        )
    background = parse(DataConfig, data_params, "data").image_folder.background
    if cfg.model_uri:
        predictor, logged = load_logged_predictor(cfg.model_uri)  # read as data: none of its code runs
        predictor.device, predictor.batch_size = cfg.device, cfg.batch_size
        which = f"{cfg.model_uri} (run {logged.run_id}, logged {logged.utc_time_created} UTC)"
    else:
        predictor = predictor_from_saved_model(model, background, cfg.device, cfg.batch_size)
        info = saved_mlflow_model_info or {}
        registered, fingerprint = info.get("registered_model_uri"), model_fingerprint(model)
        same = registered and info.get("model_fingerprint") == fingerprint
        which = describe_model(model, "data/06_models/model.pt", registered if same else None, fingerprint)
    log.info("Predicting with %s; %d classes.", which, len(predictor.class_names))
    result = predict_path(predictor, cfg.input, cfg.top_k, cfg.workers, cfg.progress)
    if result.table.empty:
        # Raised before the outputs are saved, so the last good new_predictions.csv stays as it was.
        examples = "; ".join(f"{r.file}: {r.reason}" for r in result.rejected.head(3).itertuples())
        found = (f"none of its {len(result.rejected)} files is a usable image ({examples})" if examples
                 else "it holds no files")
        raise DataError(
            f"Nothing to predict under '{cfg.input}' (parameter 'predict.input'): {found}; point predict.input "
            f"at images Pillow can read (data/07_model_output/new_predictions.csv was left as it was)."
        )
    log.info("Predicted %d images under '%s'; %d files not predicted.", len(result.table), cfg.input,
             len(result.rejected))
    shown = min(cfg.contact_sheet_images, len(result.table))
    figure = predictions_figure(
        result.images[:shown], result.table["file"].head(shown).tolist(),
        result.table["class_1"].head(shown).tolist(), result.table["probability_1"].head(shown).to_numpy(),
        total=len(result.table), model=which,
    )
    table = result.table.assign(model=which)  # last column: which model gave these predictions
    return table, result.rejected, figure


HEADLINE = ("top1", "top5", "macro_f1")  # the numbers a registered version carries as tags


def headline_tags(metrics: dict) -> dict[str, float]:
    """The held-out headline numbers of ``metrics.json`` as flat tags for the registered version: val.top1,
    test.macro_f1, ... (the rest stays in the run's metrics)."""
    return {f"{subset}.{name}": round(float(metrics[subset][name]), 6) for subset in ("val", "test")
            if subset in metrics for name in HEADLINE if name in metrics[subset]}


def log_mlflow_model(
    model: dict,
    normalization_stats: dict,
    metrics: dict,
    dataset: LabelledImages,
    split: pd.DataFrame,
    predict_params: dict[str, Any],
    background: list[int],
) -> dict:
    """Log the trained model as an MLflow pyfunc in the run, registered under
    ``predict.registered_model_name`` with the headline metrics as version tags.

    ``background`` is ``data.image_folder.background``; the input size is the training images'.
    Only these two data parameters are inputs, so that an ablation step's run logs no other.
    """
    cfg = parse(PredictConfig, predict_params, "predict")
    if not cfg.log_model:
        log.info("predict.log_model is false; no MLflow Model logged.")
        return {"logged": False, "reason": "predict.log_model is false"}
    if mlflow.active_run() is None:
        log.warning("No active MLflow run (tracking disabled for this pipeline?); no MLflow Model logged.")
        return {"logged": False, "reason": "no active MLflow run"}
    predictor = predictor_from_model(model, normalization_stats, dataset.images.shape[1], background)
    examples = subset_index(dataset, split, "val")
    example = dataset.images[examples[0] if len(examples) else 0]
    info = log_classwise_model(model, predictor, np.asarray(example), cfg.registered_model_name,
                               headline_tags(metrics))
    return {"logged": True, **info}
