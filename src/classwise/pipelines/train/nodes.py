"""The training node: a thin wrapper around classwise.training.fit."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from classwise.core.config import parse
from classwise.core.errors import RunError
from classwise.diagnosis.dynamics import AUM_THRESHOLD, dynamics_figure, dynamics_summary, dynamics_table
from classwise.framework.tracking import as_logged_metrics
from classwise.training.lineage import lineage
from classwise.data.sources import LabelledImages
from classwise.data.split import subset_index
from classwise.framework.tracking import epoch_logger
from classwise.training import TrainConfig, fit

log = logging.getLogger(__name__)


def train_model(
    dataset: LabelledImages,
    split: pd.DataFrame,
    normalization_stats: dict,
    train_params: dict[str, Any],
    aum_threshold: float = AUM_THRESHOLD,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Train on the train subset, validate each epoch; return the best weights, the history and the
    training dynamics of every training image (AUM, confidence, variability; training.dynamics).

    With ``train.checkpoint_dir`` set (data/06_models/checkpoints in conf/base) every
    epoch is checkpointed there, and rerunning the same command after a crash or a
    kill continues from the last complete epoch (``train.resume``).
    """
    cfg = parse(TrainConfig, train_params, "train")
    train_idx = subset_index(dataset, split, "train")
    val_idx = subset_index(dataset, split, "val")
    result = fit(
        dataset.images[train_idx],
        dataset.labels[train_idx],
        dataset.images[val_idx],
        dataset.labels[val_idx],
        num_classes=dataset.num_classes,
        mean=normalization_stats["mean"],
        std=normalization_stats["std"],
        cfg=cfg,
        on_epoch_end=epoch_logger(),
    )
    if result.resumed_from:
        log.info("Epochs 1-%d came from the checkpoint in %s.", result.resumed_from, cfg.checkpoint_dir)
    if not any(row["images_per_s"] > 0 for row in result.history) or not result.best_state:
        # Raised before the outputs are saved, so the model file of the last good run stays as it was.
        raise RunError(
            f"Training ran no optimisation step (train.epochs = {cfg.epochs}, train.batch_size = "
            f"{cfg.batch_size}, {len(train_idx)} training images), so the saved model was left unchanged; "
            f"set train.epochs to 1 or more and train.batch_size to 2 or more."
        )
    log.info("Best validation accuracy at epoch %d.", result.best_epoch)
    # The input the network was trained on travels with it, so that predict cannot feed it
    # images of another size or normalised with another dataset's statistics.
    trained_input = {
        "image_size": int(dataset.images.shape[1]),
        "normalization": {"mean": [float(v) for v in normalization_stats["mean"]],
                          "std": [float(v) for v in normalization_stats["std"]]},
    }
    model = {
        "config": {**result.model_config, "best_epoch": result.best_epoch, **lineage(dataset, split),
                   **trained_input, "trained_at": datetime.now().astimezone().isoformat(timespec="seconds")},
        "state_dict": result.best_state,
    }
    ids = [dataset.ids[i] for i in train_idx]
    dynamics = dynamics_table(ids, dataset.labels[train_idx], dataset.class_names, result.dynamics,
                              float(aum_threshold))
    return model, pd.DataFrame(result.history), dynamics


def summarize_training_dynamics(training_dynamics: pd.DataFrame, label_noise: pd.DataFrame,
                                aum_threshold: float = AUM_THRESHOLD) -> tuple[plt.Figure, dict]:
    """The data map figure and MLflow metrics dynamics/<name>; scored against known flips where there are any."""
    values = dynamics_summary(training_dynamics, label_noise)
    log.info("Training dynamics: %d of %d training images flagged (area under the margin < evaluate.aum_threshold "
             "%g), lowest first in data/07_model_output/training_dynamics.parquet.", values["flagged"],
             values["images"], aum_threshold)
    if "noise_precision" in values:
        log.info("Against the %d flipped training labels: precision %.3f, recall %.3f, top-%d precision %.3f.",
                 values["noise_flipped"], values["noise_precision"], values["noise_recall"],
                 values["noise_flipped"], values["noise_top_n_precision"])
    flips = set(label_noise["id"].astype(str)) if len(label_noise) else None
    return dynamics_figure(training_dynamics, float(aum_threshold), flips), as_logged_metrics(values)
