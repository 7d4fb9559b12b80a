"""The training node: a thin wrapper around classwise.training.fit."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd

from classwise.core.config import parse
from classwise.core.errors import RunError
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
) -> tuple[dict, pd.DataFrame]:
    """Train on the train subset, validate each epoch; return the best weights and the history.

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
    return model, pd.DataFrame(result.history)
