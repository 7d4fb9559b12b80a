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
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from ..config import ConfigError
from ..inference import Switch, predict_logits, resolve_device, to_device_images
from ..models import available_models
from ..models.registry import model_option_names
from .batches import DeviceBatches
from . import distributed
from .checkpoint import (
    CheckpointLock,
    TrainingState,
    checkpoint_path,
    checkpoint_state,
    fingerprint,
    resume,
    save_checkpoint,
)
from .distributed import check_data_parallel
from .losses import check_loss_combination, loss_options
from .schedule import step_lr
from .step import TrainStep

try:  # progress bars when tqdm is installed; the core itself needs only torch and numpy
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
except ImportError:  # pragma: no cover
    tqdm = None
    logging_redirect_tqdm = contextlib.nullcontext

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """The training recipe. The defaults are the study's final recipe (pre-activation SE-WRN-28-10,
    120 epochs of SGD, label smoothing, oversampling, CutMix, random crop); conf/base sets a
    CPU-sized demo, and conf/seed lists only what differs from these defaults."""

    SECTION: ClassVar[str] = "train"  # the parameter block its error messages name

    # Model
    model: str = "preact_se_wrn_28_10"  # a name from classwise.models.available_models()
    model_options: dict[str, Any] = field(default_factory=dict)  # variant data, e.g. {width: 16}
    # Optimisation (the study: SGD lr 0.1, momentum 0.9, x0.1 at epochs 60 and 90 of 120, batch 128)
    epochs: int = 120  # passes over the training subset
    batch_size: int = 128  # images per step
    lr: float = 0.1  # learning rate at epoch 0
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # Nesterov momentum
    weight_decay: float = 5e-4  # L2 penalty on all weights
    milestones: list[int] = field(default_factory=lambda: [60, 90])  # 0-based epochs where lr drops
    gamma: float = 0.1  # lr factor at each milestone
    label_smoothing: float = 0.1  # target mass spread over the other classes
    # Imbalance remedies (classwise.training.losses); class counts come from the train subset
    loss: Literal["cross_entropy", "balanced_softmax", "logit_adjusted", "ldam", "class_balanced", "focal"] = (
        "cross_entropy")
    loss_options: dict[str, Any] = field(default_factory=dict)  # e.g. {tau: 1.0}; unknown keys are refused
    drw_epoch: int | None = None  # 0-based epoch from which effective-number class weights apply; None = off
    # Data
    oversample: bool = True  # class-balanced draws with replacement (weights 1 / class count)
    cutmix_p: float = 0.5  # probability a batch gets CutMix; 0 = off
    cutmix_alpha: float = 1.0  # box area ratio ~ Beta(alpha, alpha)
    augment: Literal["none", "crop_flip", "seed_heavy"] = "crop_flip"  # batched, on the device
    # Runtime
    device: str = "auto"  # auto (cuda when present, else cpu), cpu, cuda, cuda:1, ...
    seed: int = 0  # seeds weights, sampling and augmentation
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    progress: bool = True  # progress bars (shown only when the output is a terminal)
    amp: Switch = "auto"  # bf16 autocast; auto: on CUDA and on CPUs with native bf16 (inference.speed_path)
    channels_last: Switch = "auto"  # NHWC memory layout; auto: as amp
    compile: bool = False  # torch.compile the model (CUDA only)
    checkpoint_dir: str | None = None  # where per-epoch checkpoints go; None = none
    resume: bool = True  # continue from this configuration's checkpoint when there is one
    # Data parallel (training.distributed): batch_size stays the global batch, split evenly over the processes
    nproc_per_node: int = 1  # processes on this machine, one GPU each on CUDA (DDP); 1 = a plain training
    sync_batchnorm: bool = False  # with nproc_per_node > 1 on CUDA: BatchNorm statistics over the global batch

    def __post_init__(self) -> None:
        """Refuse values that cannot train, naming the key and the fix (one sentence each)."""
        def refuse(key: str, rule: str) -> ConfigError:
            return ConfigError(f"Parameter 'train.{key}' is {getattr(self, key)!r}; it must be {rule}.")

        if self.model not in available_models():
            raise ConfigError(
                f"Parameter 'train.model' is {self.model!r}, which is not a known model; "
                f"choose one of: {', '.join(available_models())}."
            )
        known = model_option_names(self.model)
        unknown = sorted(set(self.model_options) - set(known)) if known is not None else []
        if unknown:
            raise ConfigError(
                f"Parameter 'train.model_options' has {', '.join(repr(k) for k in unknown)}, which model "
                f"'{self.model}' does not take; its options are: {', '.join(known) or 'none'}."
            )
        checks = [
            ("epochs", self.epochs >= 1, "1 or more"),
            ("batch_size", self.batch_size >= 2, "2 or more (BatchNorm cannot train on one image)"),
            ("lr", self.lr > 0, "above 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"),
            ("gamma", self.gamma > 0, "above 0 (the lr is multiplied by it at each milestone)"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("cutmix_p", 0 <= self.cutmix_p <= 1, "in [0, 1]"),
            ("cutmix_alpha", self.cutmix_alpha > 0, "above 0"),
            ("eval_batch_size", self.eval_batch_size >= 1, "1 or more"),
            ("nproc_per_node", self.nproc_per_node >= 1, "1 or more"),
        ]
        for key, ok, rule in checks:
            if not ok:
                raise refuse(key, rule)
        if any(m < 1 for m in self.milestones) or sorted(set(self.milestones)) != list(self.milestones):
            raise ConfigError(
                f"Parameter 'train.milestones' is {self.milestones}; give increasing epochs of 1 or more "
                f"at which the lr is multiplied by train.gamma (or [] for a constant lr)."
            )
        if self.nproc_per_node > 1:
            check_data_parallel(self)
        loss_options(self.loss, self.loss_options, self.drw_epoch)
        check_loss_combination(self.loss, self.cutmix_p)
        if self.drw_epoch is not None and self.drw_epoch < 0:
            raise ConfigError(f"Parameter 'train.drw_epoch' is {self.drw_epoch}; set a 0-based epoch or null.")
        unreached = [m for m in self.milestones if m >= self.epochs]
        if unreached:
            log.warning("train.milestones %s lie at or beyond train.epochs = %d: the lr does not drop there.",
                        unreached, self.epochs)


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


def _bar(iterable, cfg: TrainConfig, **kwargs):
    """A progress bar when asked for and the output is a terminal (tqdm's disable=None)."""
    if tqdm is None or not cfg.progress or not distributed.is_main():
        return iterable
    return tqdm(iterable, mininterval=1.0, disable=None, **kwargs)


def _note_cuda_only_options(cfg: TrainConfig, device: torch.device) -> None:
    if device.type != "cuda" and cfg.compile:
        log.info("train.compile applies on CUDA only: the model runs eagerly on %s.", device)


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
    _note_cuda_only_options(cfg, device)
    if device.type == "cuda":  # every batch is 32x32, so cuDNN's per-shape autotuning pays for itself at once
        torch.backends.cudnn.benchmark = True
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
    step = TrainStep(cfg, num_classes, mean, std, device, torch.bincount(y_train, minlength=num_classes))
    if not len(val_labels):
        log.info("No validation images (split.val_per_class = 0?): the weights of the last epoch are kept.")
    x_val = to_device_images(val_images, device)
    y_val = torch.from_numpy(np.asarray(val_labels, dtype=np.int64)).to(device)
    val_criterion = nn.CrossEntropyLoss(reduction="sum")

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
        if replica is not None:  # after resume: DDP starts every replica from rank 0's weights
            ddp = distributed.replicate(step.model, device, cfg.sync_batchnorm)
            step.forward = torch.compile(ddp) if step.forward is not step.model else ddp
        _train_epochs(cfg, batches, step, x_val, y_val, val_criterion, state, ckpt_file, generator, host_rng,
                      device, on_epoch_end)
    return TrainResult(
        best_state=state.best_state,
        model_config={"name": cfg.model, "num_classes": num_classes, "options": dict(cfg.model_options)},
        history=state.history,
        best_epoch=state.best_epoch,
        resumed_from=resumed_from,
        last_state={k: v.detach().to("cpu", copy=True) for k, v in step.model.state_dict().items()},
    )


def _train_epochs(cfg: TrainConfig, batches: DeviceBatches, step: TrainStep, x_val: torch.Tensor,
                  y_val: torch.Tensor, val_criterion: nn.Module, state: TrainingState, ckpt_file,
                  generator: torch.Generator, host_rng: np.random.Generator, device: torch.device,
                  on_epoch_end: Callable[[dict[str, float]], None] | None) -> None:
    """The epochs from ``state.epoch`` to ``cfg.epochs``: train, validate, record, checkpoint, report."""
    with logging_redirect_tqdm():
        epochs_bar = _bar(range(state.epoch, cfg.epochs), cfg, desc="epochs", initial=state.epoch,
                          total=cfg.epochs)
        for epoch in epochs_bar:
            lr = step_lr(epoch, cfg.lr, cfg.milestones, cfg.gamma)
            step.set_lr(lr)
            step.criterion.set_epoch(epoch)  # deferred re-weighting switches its class weights here
            step.model.train()
            start = time.perf_counter()
            # Sums stay on the device: one sync an epoch instead of one a step.
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for xb, target, yb in _bar(batches.epoch(), cfg, total=len(batches), leave=False,
                                       desc=f"epoch {epoch + 1}/{cfg.epochs}"):
                loss, logits = step(xb, target)
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
            if distributed.current() is not None:  # the whole global batch's numbers, on every replica
                loss_sum, correct, seen = distributed.current().sum_epoch(loss_sum, correct, seen)
            train_loss = loss_sum.item() / max(seen, 1)
            train_seconds = time.perf_counter() - start
            if not math.isfinite(train_loss):
                raise FloatingPointError(
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
