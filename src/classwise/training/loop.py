"""The epoch loop: GPU-resident uint8 data, batched on-device augmentation, SGD.

Runs with torch, torchvision and numpy alone (no Kedro, no MLflow), so it can be
benchmarked on a bare GPU machine. Kedro nodes wrap it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..models import build_model
from .augment import augment_batch
from .schedule import step_lr

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
    # Data
    augment: Literal["none", "crop_flip"] = "crop_flip"  # batched, on the training device
    # Runtime
    device: str = "auto"  # auto (cuda when present, else cpu), cpu, cuda, cuda:1, ...
    seed: int = 0  # seeds weights, sampling and augmentation
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    progress: bool = True  # a progress bar per epoch


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]  # weights of the best-by-validation-accuracy epoch (CPU)
    model_config: dict[str, Any]  # what build_model needs to rebuild the network
    history: list[dict[str, float]]  # one row an epoch
    best_epoch: int


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

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.scale + self.shift


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    normalize: Normalizer,
    batch_size: int,
) -> torch.Tensor:
    """Logits (float32) of uint8 NCHW ``images`` already on the model's device, batched."""
    model.eval()
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
    """Train ``cfg.model`` on the uint8 training images; validate after every epoch."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)

    model_config = {"name": cfg.model, "num_classes": num_classes, "options": dict(cfg.model_options)}
    model = build_model(cfg.model, num_classes, **cfg.model_options).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    val_criterion = nn.CrossEntropyLoss(reduction="sum")
    normalize = Normalizer(mean, std, device)

    x_train = to_device_images(train_images, device)
    y_train = torch.from_numpy(np.asarray(train_labels, dtype=np.int64)).to(device)
    x_val = to_device_images(val_images, device)
    y_val = torch.from_numpy(np.asarray(val_labels, dtype=np.int64)).to(device)
    n = len(y_train)
    steps = math.ceil(n / cfg.batch_size)

    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, {}
    for epoch in range(cfg.epochs):
        lr = step_lr(epoch, cfg.lr, cfg.milestones, cfg.gamma)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=generator)
        # Sums stay on the device: one sync an epoch instead of one a step.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = tqdm(
            range(steps),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not cfg.progress,
            leave=False,
            mininterval=1.0,
        )
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a single image
                continue
            xb = normalize(augment_batch(x_train[idx], cfg.augment, generator))
            yb = y_train[idx]
            logits = model(xb)
            loss = criterion(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
            if cfg.progress and step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.4g}")
        train_loss = loss_sum.item() / max(seen, 1)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"Training loss became {train_loss} in epoch {epoch + 1}; lower train.lr "
                f"(now {cfg.lr}) or check the input images."
            )
        val_logits = predict_logits(model, x_val, normalize, cfg.eval_batch_size)
        val_loss = val_criterion(val_logits, y_val).item() / max(len(y_val), 1)
        val_acc = (val_logits.argmax(1) == y_val).float().mean().item() if len(y_val) else 0.0
        seconds = time.perf_counter() - start
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_accuracy": correct.item() / max(seen, 1),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": lr,
            "seconds": seconds,
            "images_per_s": seen / seconds,
        }
        history.append(row)
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch + 1
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  lr %.4g  %.1fs (%.0f img/s)",
            epoch + 1, cfg.epochs, row["train_loss"], row["train_accuracy"], val_loss, val_acc,
            lr, seconds, row["images_per_s"],
        )
        if on_epoch_end is not None:
            on_epoch_end(row)
    return TrainResult(best_state=copy.copy(best_state), model_config=model_config, history=history, best_epoch=best_epoch)
