"""The epoch loop: the batch source, the step, validation, checkpoints, one row of history an epoch.

Runs with torch, torchvision and numpy alone (no Kedro, no MLflow), so it can be
benchmarked on a bare GPU machine. Kedro nodes wrap it. The hot loop never copies a
value back to the host: sums stay on the device and are read once an epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from classwise.core.errors import RunError
from classwise.core.device import predict_logits, resolve_device, retain_freed_memory, to_device_images
from classwise.training.batches import DeviceBatches, prefetched
from classwise.training.config import TrainConfig
from classwise.training import distributed
from classwise.training.dynamics import TrainingDynamics
from classwise.training.checkpoint import (
    CheckpointLock,
    TrainingState,
    checkpoint_path,
    checkpoint_state,
    fingerprint,
    resume,
    save_checkpoint,
)
from classwise.training.schedule import lr_at
from classwise.training.step import TrainStep

try:  # progress bars when tqdm is installed; the core itself needs only torch and numpy
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
except ImportError:  # pragma: no cover
    tqdm = None
    logging_redirect_tqdm = contextlib.nullcontext

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]  # weights of the best-by-validation-accuracy epoch (CPU)
    model_config: dict[str, Any]  # what build_model needs to rebuild the network
    history: list[dict[str, float]]  # one row an epoch
    best_epoch: int
    resumed_from: int = 0  # epochs restored from a checkpoint (0 = trained from scratch)
    # Weights after the last epoch (CPU): out-of-fold prediction (classwise.diagnosis) must not pick
    # its weights by the held-out fold's own labels.
    last_state: dict[str, torch.Tensor] = field(default_factory=dict)
    # Per training image, in the order given: observations, aum, confidence, variability (training.dynamics).
    dynamics: dict[str, np.ndarray] = field(default_factory=dict)


def _bar(iterable, cfg: TrainConfig, **kwargs):
    """A progress bar when asked for and the output is a terminal (tqdm's disable=None)."""
    if tqdm is None or not cfg.progress or not distributed.is_main():
        return iterable
    return tqdm(iterable, mininterval=1.0, disable=None, **kwargs)


def fit(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    cfg: TrainConfig,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on the uint8 training images; validate after every epoch.

    With ``cfg.checkpoint_dir`` set, the state is saved after every epoch and a rerun
    of the same configuration on the same data continues from the last complete
    epoch; rows restored from a checkpoint are passed to ``on_epoch_end`` again, so
    a fresh tracking run still gets the whole curve.

    With ``cfg.nproc_per_node`` > 1 the training runs in that many processes
    (training.distributed) and ``on_epoch_end`` is called from a thread of this one.
    """
    replica = distributed.current()
    if cfg.nproc_per_node > 1 and replica is None:
        return distributed.launch(fit, cfg.nproc_per_node, (train_images, train_labels, val_images, val_labels,
                                                            num_classes, mean, std), {"cfg": cfg}, on_epoch_end)
    device = resolve_device(cfg.device)
    if replica is not None:
        device = replica.device(device)
    if device.type == "cuda":  # every batch is 32x32, so cuDNN's per-shape autotuning pays for itself at once
        torch.backends.cudnn.benchmark = True
    elif retain_freed_memory():  # the host's malloc keeps each step's activations for the next (fewer page faults)
        log.debug("glibc malloc keeps freed memory up to 1 GB for reuse.")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # order, augmentation, CutMix partners
    host_rng = np.random.default_rng(cfg.seed)  # CutMix's per-batch scalars, drawn without a device sync

    y_train = torch.from_numpy(np.asarray(train_labels, dtype=np.int64)).to(device)
    batches = DeviceBatches(
        to_device_images(train_images, device), y_train, num_classes, cfg.batch_size, cfg.augment,
        cfg.oversample, cfg.cutmix_p, cfg.cutmix_alpha, generator, host_rng,
        shard=(replica.rank, replica.world) if replica else (0, 1),
    )
    step = TrainStep(cfg, num_classes, mean, std, device, torch.bincount(y_train, minlength=num_classes),
                     planned_steps=cfg.epochs * len(batches))
    if not len(val_labels):
        log.info("No validation images (split.val_per_class = 0?): the weights of the last epoch are kept.")
    x_val = to_device_images(val_images, device)
    y_val = torch.from_numpy(np.asarray(val_labels, dtype=np.int64)).to(device)
    val_criterion = nn.CrossEntropyLoss(reduction="sum")

    dynamics = TrainingDynamics(len(y_train), device)
    state = TrainingState()
    ckpt_file = None
    with contextlib.ExitStack() as held:
        if cfg.checkpoint_dir:
            fp = fingerprint(asdict(cfg), np.asarray(train_images), np.asarray(train_labels),
                             np.asarray(val_images), np.asarray(val_labels), np.asarray([mean, std], dtype=np.float64))
            ckpt_file = checkpoint_path(cfg.checkpoint_dir, cfg.model, fp)
            if distributed.is_main():  # the other replicas only read the checkpoint; rank 0 writes it
                held.enter_context(CheckpointLock(ckpt_file))  # a second identical training is refused here
            ckpt_file = resume(ckpt_file, cfg.epochs, cfg.resume, step.model, step.optimizer, state, generator,
                               host_rng)
            for row in state.history if on_epoch_end is not None else ():
                on_epoch_end(row)
            if not distributed.is_main():
                ckpt_file = None
        resumed_from = state.epoch
        if state.dynamics is not None:
            dynamics.load(state.dynamics)
        elif resumed_from:
            log.warning("The checkpoint holds no training dynamics (an earlier Classwise wrote it): "
                        "training_dynamics covers epochs %d-%d only.", resumed_from + 1, cfg.epochs)
        if replica is not None:  # after resume: DDP starts every replica from rank 0's weights
            ddp = distributed.replicate(step.model, device, cfg.sync_batchnorm)
            step.eager = ddp
            step.forward = torch.compile(ddp) if step.compiled else ddp
        _train_epochs(cfg, batches, step, x_val, y_val, val_criterion, state, ckpt_file, generator, host_rng,
                      device, on_epoch_end, dynamics)
    return TrainResult(
        best_state=state.best_state,
        model_config={"name": cfg.model, "num_classes": num_classes, "options": dict(cfg.model_options)},
        history=state.history,
        best_epoch=state.best_epoch,
        resumed_from=resumed_from,
        last_state={k: v.detach().to("cpu", copy=True) for k, v in step.model.state_dict().items()},
        dynamics=dynamics.table(),
    )


def _train_epochs(cfg: TrainConfig, batches: DeviceBatches, step: TrainStep, x_val: torch.Tensor,
                  y_val: torch.Tensor, val_criterion: nn.Module, state: TrainingState, ckpt_file,
                  generator: torch.Generator, host_rng: np.random.Generator, device: torch.device,
                  on_epoch_end: Callable[[dict[str, float]], None] | None, dynamics: TrainingDynamics) -> None:
    """The epochs from ``state.epoch`` to ``cfg.epochs``: train, validate, record, checkpoint, report."""
    per_step_lr = cfg.schedule != "step"
    with logging_redirect_tqdm():
        epochs_bar = _bar(range(state.epoch, cfg.epochs), cfg, desc="epochs", initial=state.epoch,
                          total=cfg.epochs)
        for epoch in epochs_bar:
            lr = lr_at(cfg, epoch, 0, len(batches))  # the epoch's first lr (one_cycle moves it every step)
            step.set_lr(lr)
            step.criterion.set_epoch(epoch)  # deferred re-weighting switches its class weights here
            step.model.train()
            start = time.perf_counter()
            # Sums stay on the device: one sync an epoch instead of one a step.
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            source = prefetched(batches.epoch()) if step.path.prefetch else batches.epoch()
            for i, (xb, target, yb, rows) in enumerate(_bar(source, cfg, total=len(batches), leave=False,
                                                            desc=f"epoch {epoch + 1}/{cfg.epochs}")):
                if per_step_lr and i:
                    step.set_lr(lr_at(cfg, epoch, i, len(batches)))
                loss, logits = step(xb, target)
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
                if rows is not None:  # the step's own logits: no extra forward pass
                    dynamics.record(logits, yb, rows)
            replica = distributed.current()
            if replica is not None:  # the whole global batch's numbers, on every replica
                loss_sum, correct, seen = replica.sum_epoch(loss_sum, correct, seen)
            dynamics.end_epoch(None if replica is None else replica.all_reduce)
            train_loss = loss_sum.item() / max(seen, 1)
            train_seconds = time.perf_counter() - start
            if not math.isfinite(train_loss):
                raise RunError(
                    f"Training loss became {train_loss} in epoch {epoch + 1}; lower train.lr "
                    f"(now {cfg.lr}) or check the input images."
                )
            if not distributed.is_main():  # rank 0 alone validates, checkpoints and reports
                continue
            val_loss = val_acc = math.nan  # no validation subset: NaN, and the last epoch counts as best
            if len(y_val):
                val_logits = predict_logits(step.model, x_val, step.normalize, cfg.eval_batch_size, step.amp)
                val_loss = val_criterion(val_logits, y_val).item() / len(y_val)
                val_acc = (val_logits.argmax(1) == y_val).float().mean().item()
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_accuracy": correct.item() / max(seen, 1),
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "lr": lr,
                "seconds": time.perf_counter() - start,
                "images_per_s": seen / train_seconds,  # training steps only, validation excluded
            }
            state.record(row, step.model)
            if ckpt_file is not None:
                state.dynamics = dynamics.state()  # only a checkpoint reads it: no copy to the host otherwise
                save_checkpoint(ckpt_file, checkpoint_state(asdict(cfg), step.model, step.optimizer, state,
                                                            generator, host_rng))
            log.info(
                "epoch %d/%d  train loss %.3f acc %.3f  val loss %.3f acc %.3f  lr %.3g  %.1fs (%.0f img/s)",
                epoch + 1, cfg.epochs, row["train_loss"], row["train_accuracy"], val_loss, val_acc,
                lr, row["seconds"], row["images_per_s"],
            )
            if hasattr(epochs_bar, "set_postfix"):
                epochs_bar.set_postfix(val_acc=f"{val_acc:.3f}", img_s=f"{row['images_per_s']:.0f}")
            if on_epoch_end is not None:
                on_epoch_end(row)
