"""The training recipe (the ``train`` block, and ``diagnose.recipe``): typed, defaulted, range-checked.

Torch-free apart from the model registry, so the training core stays importable with torch,
torchvision and numpy alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from classwise.core.config import block_name
from classwise.core.device import Switch
from classwise.core.errors import ConfigError
from classwise.models import available_models
from classwise.models.registry import model_option_names
from classwise.training.distributed import check_data_parallel
from classwise.training.losses import check_loss_combination, loss_options

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """The training recipe. The defaults are the CPU-sized demo of conf/base (a width-16
    pre-activation ResNet-18, 12 epochs); conf/base lists every key with these very values
    (a test keeps them equal), and conf/seed names what the study's final recipe changes. One
    deliberate difference: called from Python, training writes no checkpoint unless asked
    (``checkpoint_dir`` None), while a ``kedro run`` checkpoints under data/06_models."""

    SECTION: ClassVar[str] = "train"  # the parameter block its error messages name

    # Model
    model: str = "preact_resnet18"  # a name from classwise.models.available_models()
    model_options: dict[str, Any] | None = field(default_factory=lambda: {"width": 16})  # variant data; None: the model's own
    # Optimisation (the study: SGD lr 0.1, momentum 0.9, x0.1 at epochs 60 and 90 of 120, batch 128)
    epochs: int = 12  # passes over the training subset
    batch_size: int = 64  # images per step
    lr: float = 0.05  # learning rate at epoch 0
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # Nesterov momentum
    weight_decay: float = 5e-4  # L2 penalty on all weights
    milestones: list[int] = field(default_factory=lambda: [8])  # 0-based epochs where lr drops
    gamma: float = 0.1  # lr factor at each milestone
    schedule: Literal["step", "one_cycle"] = "step"  # step: x gamma at milestones; one_cycle: up, then linear to 0
    warmup: float = 0.2  # one_cycle: share of the steps over which the lr rises from lr/10 to lr
    label_smoothing: float = 0.0  # target mass spread over the other classes
    # Imbalance remedies (classwise.training.losses); class counts come from the train subset
    loss: Literal["cross_entropy", "balanced_softmax", "logit_adjusted", "ldam", "class_balanced", "focal"] = (
        "cross_entropy")
    loss_options: dict[str, Any] = field(default_factory=dict)  # e.g. {tau: 1.0}; unknown keys are refused
    drw_epoch: int | None = None  # 0-based epoch from which effective-number class weights apply; None = off
    # Data
    oversample: bool = False  # class-balanced draws with replacement (weights 1 / class count)
    cutmix_p: float = 0.0  # probability a batch gets CutMix; 0 = off
    cutmix_alpha: float = 1.0  # box area ratio ~ Beta(alpha, alpha)
    augment: Literal["none", "crop_flip", "seed_heavy"] = "none"  # batched, on the device
    # Runtime
    device: str = "auto"  # auto (cuda when present, else cpu), cpu, cuda, cuda:1, ...
    seed: int = 0  # seeds weights, sampling and augmentation
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    progress: bool = True  # progress bars (shown only when the output is a terminal)
    amp: Switch = "auto"  # bf16 autocast; auto: on CUDA and on CPUs with native bf16 (core.device.speed_path)
    channels_last: Switch = "auto"  # NHWC memory layout; auto: as amp
    compile: Switch = False  # torch.compile (inductor); auto: on a CPU for runs of 2,000 steps or more (conf/cpu)
    prefetch: Switch = "auto"  # the next batch prepared on a thread during the step; auto: CUDA, or a spare CPU core
    checkpoint_dir: str | None = None  # where per-epoch checkpoints go; None = none (conf/base: data/06_models/checkpoints)
    resume: bool = True  # continue from this configuration's checkpoint when there is one
    # Data parallel (training.distributed): batch_size stays the global batch, split evenly over the processes
    nproc_per_node: int = 1  # processes on this machine, one GPU each on CUDA (DDP); 1 = a plain training
    sync_batchnorm: bool = False  # with nproc_per_node > 1 on CUDA: BatchNorm statistics over the global batch

    def __post_init__(self) -> None:
        """Refuse values that cannot train, naming the key and the fix (one sentence each)."""
        block = block_name(self.SECTION)
        if self.model_options is None:  # an environment's null clears conf/base's options: the model's own
            self.model_options = {}

        def refuse(key: str, rule: str) -> ConfigError:
            return ConfigError(f"Parameter '{block}.{key}' is {getattr(self, key)!r}; it must be {rule}.")

        if self.model not in available_models():
            raise ConfigError(
                f"Parameter '{block}.model' is {self.model!r}, which is not a known model; "
                f"choose one of: {', '.join(available_models())}."
            )
        known = model_option_names(self.model)
        unknown = sorted(set(self.model_options) - set(known)) if known is not None else []
        if unknown:
            raise ConfigError(
                f"Parameter '{block}.model_options' has {', '.join(repr(k) for k in unknown)}, which model "
                f"'{self.model}' does not take; its options are: {', '.join(known) or 'none'}."
            )
        checks = [
            ("epochs", self.epochs >= 1, "1 or more"),
            ("batch_size", self.batch_size >= 2, "2 or more (BatchNorm cannot train on one image)"),
            ("lr", self.lr > 0, "above 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"),
            ("gamma", self.gamma > 0, "above 0 (the lr is multiplied by it at each milestone)"),
            ("warmup", 0 <= self.warmup < 1, "in [0, 1) (the share of the steps one_cycle warms up over)"),
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
                f"Parameter '{block}.milestones' is {self.milestones}; give increasing epochs of 1 or more "
                f"at which the lr is multiplied by {block}.gamma (or [] for a constant lr)."
            )
        if self.nproc_per_node > 1:
            check_data_parallel(self)
        loss_options(self.loss, self.loss_options, self.drw_epoch)
        check_loss_combination(self.loss, self.cutmix_p)
        if self.drw_epoch is not None and self.drw_epoch < 0:
            raise ConfigError(f"Parameter '{block}.drw_epoch' is {self.drw_epoch}; set a 0-based epoch or null.")
        unreached = [m for m in self.milestones if m >= self.epochs]
        if self.schedule == "one_cycle" and self.milestones:
            log.warning("%s.schedule is one_cycle, which ignores %s.milestones %s; set milestones: [] to say so.",
                        block, block, self.milestones)
        elif unreached:
            log.warning("%s.milestones %s lie at or beyond %s.epochs = %d: the lr does not drop there.",
                        block, unreached, block, self.epochs)
