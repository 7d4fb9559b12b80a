"""The epoch loop: GPU-resident uint8 data, batched on-device augmentation, SGD, checkpoints.

Runs with torch, torchvision and numpy alone (no Kedro, no MLflow), so it can be
benchmarked on a bare GPU machine. Kedro nodes wrap it. The hot loop never
copies a value back to the host: sums stay on the device and are read once an
epoch, and CutMix's scalar draws come from a host-side numpy Generator.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..config import ConfigError
from ..models import build_model
from .augment import augment_batch
from .checkpoint import (
    capture_rng_states,
    checkpoint_path,
    fingerprint,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from .cutmix import cutmix
from .losses import build_criterion, check_loss_combination, describe, loss_options
from .sampling import epoch_indices
from .schedule import step_lr

try:  # a progress bar when tqdm is installed; the core itself needs only torch and numpy
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # Model
    model: str = "preact_resnet18"  # a name from classwise.models.available_models()
    model_options: dict[str, Any] = field(default_factory=dict)  # variant data, e.g. {width: 16}
    # Optimisation (the seed: SGD lr 0.1, momentum 0.9, x0.1 at epochs 60 and 90 of 120, batch 128)
    epochs: int = 120  # passes over the training subset
    batch_size: int = 128  # images per step
    lr: float = 0.1  # learning rate at epoch 0
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # Nesterov momentum
    weight_decay: float = 0.0  # L2 penalty on all weights
    milestones: list[int] = field(default_factory=lambda: [60, 90])  # 0-based epochs where lr drops
    gamma: float = 0.1  # lr factor at each milestone
    label_smoothing: float = 0.0  # mass spread over the other classes (the seed: 0.1)
    # Imbalance remedies (classwise.training.losses); class counts come from the train subset
    loss: Literal["cross_entropy", "balanced_softmax", "logit_adjusted", "ldam", "class_balanced", "focal"] = (
        "cross_entropy")
    loss_options: dict[str, Any] = field(default_factory=dict)  # e.g. {tau: 1.0}; unknown keys are refused
    drw_epoch: int | None = None  # 0-based epoch from which effective-number class weights apply; None = off
    # Data
    oversample: bool = False  # class-balanced draws with replacement (weights 1 / class count)
    cutmix_p: float = 0.0  # probability a batch gets CutMix (the seed: 0.5); 0 = off
    cutmix_alpha: float = 1.0  # box area ratio ~ Beta(alpha, alpha)
    augment: Literal["none", "crop_flip", "seed_heavy"] = "crop_flip"  # batched, on the device
    # Runtime
    device: str = "auto"  # auto (cuda when present, else cpu), cpu, cuda, cuda:1, ...
    seed: int = 0  # seeds weights, sampling and augmentation
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    progress: bool = True  # progress bars
    amp: bool = True  # bf16 autocast (CUDA only; the CPU trains in float32)
    channels_last: bool = True  # NHWC memory layout (CUDA only)
    compile: bool = False  # torch.compile the model (CUDA only)
    checkpoint_dir: str | None = None  # where per-epoch checkpoints go; None = none
    resume: bool = True  # continue from this configuration's checkpoint when there is one

    def __post_init__(self) -> None:
        loss_options(self.loss, self.loss_options, self.drw_epoch)
        check_loss_combination(self.loss, self.cutmix_p)
        if self.drw_epoch is not None and self.drw_epoch < 0:
            raise ConfigError(f"Parameter 'train.drw_epoch' is {self.drw_epoch}; set a 0-based epoch or null.")


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]  # weights of the best-by-validation-accuracy epoch (CPU)
    model_config: dict[str, Any]  # what build_model needs to rebuild the network
    history: list[dict[str, float]]  # one row an epoch
    best_epoch: int
    last_state: dict[str, torch.Tensor] = field(default_factory=dict)  # weights after the last epoch (CPU)
    resumed_from: int = 0  # epochs restored from a checkpoint (0 = trained from scratch)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; an explicit CUDA request without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Parameter 'train.device' is '{name}' but no CUDA GPU is visible; "
            f"set train.device to 'auto' or 'cpu'."
        )
    return device


def to_device_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, 3) numpy -> uint8 (N, 3, H, W) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous()


class Normalizer:
    """uint8 batch -> float batch, ``(x / 255 - mean) / std`` per channel, fused as x*a+b."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device,
                 channels_last: bool = False) -> None:
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * self.scale + self.shift).contiguous(memory_format=self.memory_format)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TrainStep:
    """One optimisation step on a batch of indices: gather, augment, CutMix, forward, backward, update.

    The model, optimizer and loss are built here, once, so that ``fit`` and the
    benchmark (classwise.benchmark) run exactly the same step.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        num_classes: int,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        generator: torch.Generator,
        host_rng: np.random.Generator,
    ) -> None:
        cuda = device.type == "cuda"
        self.cfg, self.num_classes, self.x_train, self.y_train = cfg, num_classes, x_train, y_train
        self.device, self.generator, self.host_rng = device, generator, host_rng
        self.model = build_model(cfg.model, num_classes, **cfg.model_options).to(device)
        if cuda and cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The compiled wrapper runs the steps; ``model`` keeps the plain state_dict keys.
        self.forward = torch.compile(self.model) if (cuda and cfg.compile) else self.model
        # On CUDA the fused SGD kernel updates all parameters in a few launches instead of
        # several per tensor; the CPU keeps the reference implementation.
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay, fused=True if cuda else None,
        )
        counts = torch.bincount(y_train, minlength=num_classes)
        self.criterion = build_criterion(cfg.loss, cfg.loss_options, counts, cfg.label_smoothing, cfg.drw_epoch)
        log.info("train.loss %s: %s.", cfg.loss, describe(self.criterion))
        self.normalize = Normalizer(mean, std, device, channels_last=cuda and cfg.channels_last)
        self.amp = cfg.amp and cuda

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Train on the images at ``idx``; return (loss, logits, labels), all still on the device."""
        cfg = self.cfg
        xb = augment_batch(self.x_train[idx], cfg.augment, self.generator)
        yb = self.y_train[idx]
        target: torch.Tensor = yb
        if cfg.cutmix_p > 0:
            xb, target = cutmix(xb, yb, self.num_classes, cfg.cutmix_p, cfg.cutmix_alpha, self.host_rng,
                                self.generator)
        with _autocast(self.device, self.amp):
            logits = self.forward(self.normalize(xb))
            loss = self.criterion(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss, logits, yb


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    normalize: Normalizer,
    batch_size: int,
    amp: bool = False,
) -> torch.Tensor:
    """Logits (float32) of uint8 NCHW ``images`` already on the model's device, batched."""
    model.eval()
    with _autocast(images.device, amp):
        outs = [model(normalize(images[i : i + batch_size])).float() for i in range(0, len(images), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    device: str = "auto",
    batch_size: int = 1024,
) -> np.ndarray:
    """Softmax probabilities (N, classes) for uint8 (N, H, W, 3) images."""
    dev = resolve_device(device)
    model = model.to(dev)
    x = to_device_images(images, dev)
    logits = predict_logits(model, x, Normalizer(mean, std, dev), batch_size)
    return torch.softmax(logits, 1).cpu().numpy()


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _bar(iterable, cfg: TrainConfig, **kwargs):
    if tqdm is None or not cfg.progress:
        return iterable
    return tqdm(iterable, mininterval=1.0, **kwargs)


def _note_cuda_only_options(cfg: TrainConfig, device: torch.device) -> None:
    if device.type != "cuda":
        asked = [k for k in ("amp", "channels_last", "compile") if getattr(cfg, k)]
        if asked:
            log.info("train.%s apply on CUDA only; training on %s in float32.", "/".join(asked), device)


@dataclass
class _Progress:
    """What a checkpoint restores besides weights and random states."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_accuracy: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return len(self.history)


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
    """
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    _note_cuda_only_options(cfg, device)
    if cuda:  # every batch is 32x32, so cuDNN's per-shape autotuning pays for itself at once
        torch.backends.cudnn.benchmark = True
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)  # sampling, augmentation, partners
    host_rng = np.random.default_rng(cfg.seed)  # CutMix's per-batch scalars, drawn without a device sync

    model_config = {"name": cfg.model, "num_classes": num_classes, "options": dict(cfg.model_options)}
    x_train = to_device_images(train_images, device)
    y_train = torch.from_numpy(np.asarray(train_labels, dtype=np.int64)).to(device)
    step_fn = TrainStep(cfg, num_classes, x_train, y_train, mean, std, device, generator, host_rng)
    model, optimizer, normalize, amp = step_fn.model, step_fn.optimizer, step_fn.normalize, step_fn.amp
    val_criterion = nn.CrossEntropyLoss(reduction="sum")

    x_val = to_device_images(val_images, device)
    y_val = torch.from_numpy(np.asarray(val_labels, dtype=np.int64)).to(device)
    n = len(y_train)
    steps = math.ceil(n / cfg.batch_size)

    progress = _Progress()
    ckpt_file = None
    if cfg.checkpoint_dir:
        fp = fingerprint(asdict(cfg), np.asarray(train_images), np.asarray(train_labels),
                         np.asarray(val_images), np.asarray(val_labels), np.asarray([mean, std], dtype=np.float64))
        ckpt_file = checkpoint_path(cfg.checkpoint_dir, cfg.model, fp)
        if _resume(ckpt_file, cfg, model, optimizer, progress, generator, host_rng):
            for row in progress.history:
                if on_epoch_end is not None:
                    on_epoch_end(row)
    resumed_from = progress.epoch

    epochs_bar = _bar(range(progress.epoch, cfg.epochs), cfg, desc="epochs", initial=progress.epoch,
                      total=cfg.epochs)
    for epoch in epochs_bar:
        lr = step_lr(epoch, cfg.lr, cfg.milestones, cfg.gamma)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        step_fn.criterion.set_epoch(epoch)
        start = time.perf_counter()
        order = epoch_indices(y_train, num_classes, cfg.oversample, generator)
        # Sums stay on the device: one sync an epoch instead of one a step.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step in _bar(range(steps), cfg, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a single image
                continue
            loss, logits, yb = step_fn(idx)
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
        train_loss = loss_sum.item() / max(seen, 1)
        train_seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"Training loss became {train_loss} in epoch {epoch + 1}; lower train.lr "
                f"(now {cfg.lr}) or check the input images."
            )
        val_logits = predict_logits(model, x_val, normalize, cfg.eval_batch_size, amp)
        val_loss = val_criterion(val_logits, y_val).item() / max(len(y_val), 1)
        val_acc = (val_logits.argmax(1) == y_val).float().mean().item() if len(y_val) else 0.0
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
        progress.history.append(row)
        if val_acc > progress.best_accuracy:
            progress.best_accuracy, progress.best_epoch = val_acc, epoch + 1
            progress.best_state = _cpu_copy(model.state_dict())
        if ckpt_file is not None:
            save_checkpoint(ckpt_file, _checkpoint_state(cfg, model, optimizer, progress, generator, host_rng))
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  lr %.4g  %.1fs (%.0f img/s)",
            epoch + 1, cfg.epochs, row["train_loss"], row["train_accuracy"], val_loss, val_acc,
            lr, row["seconds"], row["images_per_s"],
        )
        if hasattr(epochs_bar, "set_postfix"):
            epochs_bar.set_postfix(train_acc=f"{row['train_accuracy']:.3f}", val_acc=f"{val_acc:.3f}",
                                   img_s=f"{row['images_per_s']:.0f}")
        if on_epoch_end is not None:
            on_epoch_end(row)
    return TrainResult(
        best_state=progress.best_state,
        model_config=model_config,
        history=progress.history,
        best_epoch=progress.best_epoch,
        last_state=_cpu_copy(model.state_dict()),
        resumed_from=resumed_from,
    )


def _checkpoint_state(cfg, model, optimizer, progress: _Progress, generator, host_rng) -> dict[str, Any]:
    return {
        "format": 1,
        "config": asdict(cfg),
        "epoch": progress.epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": progress.history,
        "best": {"accuracy": progress.best_accuracy, "epoch": progress.best_epoch, "state": progress.best_state},
        "rng": capture_rng_states(generator, host_rng),
    }


def _resume(path, cfg: TrainConfig, model, optimizer, progress: _Progress, generator, host_rng) -> bool:
    """Load this configuration's checkpoint into the run; False when starting from scratch."""
    if not cfg.resume:
        log.info("train.resume is false: training from scratch; the checkpoint '%s' will be overwritten.", path)
        return False
    blob = load_checkpoint(path)
    if blob is None:
        others = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
        if others:
            log.warning(
                "No checkpoint for this configuration and data (%s) in %s, only for others (%s): the "
                "configuration or data changed since, so training starts from scratch rather than resuming.",
                path.name, path.parent, ", ".join(others),
            )
        else:
            log.info("No checkpoint at '%s': training from scratch.", path)
        return False
    if blob["epoch"] > cfg.epochs:
        raise RuntimeError(
            f"The checkpoint '{path}' already holds {blob['epoch']} epochs, more than train.epochs = "
            f"{cfg.epochs}; raise train.epochs, set train.resume to false, or choose another train.checkpoint_dir."
        )
    model.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    restore_rng_states(blob["rng"], generator, host_rng)
    progress.history = [dict(row) for row in blob["history"]]
    progress.best_accuracy = blob["best"]["accuracy"]
    progress.best_epoch = blob["best"]["epoch"]
    progress.best_state = blob["best"]["state"]
    if blob["epoch"] == cfg.epochs:
        log.info("Checkpoint '%s' is complete (%d epochs): reusing its result without training; set "
                 "train.resume to false to train again.", path, blob["epoch"])
    else:
        log.info("Resuming from checkpoint '%s' after epoch %d of %d.", path, blob["epoch"], cfg.epochs)
    return True
