"""One optimisation step: normalise, forward, loss, backward, update.

The model, optimizer and loss are built here, once, so that ``fit`` and the benchmark
(benchmarks/throughput.py) run exactly the same step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from classwise.core.device import Normalizer, autocast, bf16_is_emulated, compile_choice, speed_path
from classwise.models import build_model
from classwise.training.config import TrainConfig
from classwise.training.losses import build_criterion, describe

log = logging.getLogger(__name__)



class TrainStep:
    def __init__(self, cfg: TrainConfig, num_classes: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device, class_counts: torch.Tensor, planned_steps: int | None = None) -> None:
        """``class_counts``: training images a class (on ``device``), for the imbalance losses;
        ``planned_steps``: the run's training steps, for ``compile: auto``."""
        cuda = device.type == "cuda"
        self.device = device
        self.model = build_model(cfg.model, num_classes, **cfg.model_options).to(device)
        # the same choice evaluation makes
        self.path = speed_path(device, cfg.amp, cfg.channels_last, cfg.prefetch, model=self.model)
        compiled, why = compile_choice(device, cfg.compile, planned_steps)
        log.info("Training on %s: %s; %s.", device, self.path.describe(), why)
        if self.path.amp and bf16_is_emulated(device):
            log.warning("amp is true on a CPU without native bf16 (AVX512-BF16/AMX): bf16 is emulated and this "
                        "training will run about 10x slower than in float32; set amp: auto (train.amp, "
                        "diagnose.recipe.amp) to train in float32.")
        if self.path.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The compiled wrapper runs the full batches; ``model`` keeps the plain state_dict keys, and
        # ``eager`` (the model, or its DDP wrapper) runs any other batch size, such as an epoch's last
        # batch, which would otherwise cost a second compile.
        self.eager = self.model
        self.forward = torch.compile(self.model) if compiled else self.model
        self.compiled = compiled
        self._full_batch: int | None = None
        # On CUDA the fused SGD kernel updates all parameters in a few launches instead of
        # several per tensor; the CPU keeps the reference implementation.
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay, fused=True if cuda else None,
        )
        self.criterion = build_criterion(cfg.loss, cfg.loss_options, class_counts, cfg.label_smoothing, cfg.drw_epoch)
        log.info("train.loss %s: %s.", cfg.loss, describe(self.criterion))
        self.normalize = Normalizer(mean, std, device, channels_last=self.path.channels_last)
        self.amp = self.path.amp

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def __call__(self, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on uint8 images ``xb``; return (loss, logits), both still on the device."""
        if self._full_batch is None:
            self._full_batch = len(xb)
        net = self.forward if len(xb) == self._full_batch else self.eager
        with autocast(self.device, self.amp):
            logits = net(self.normalize(xb))
            loss = self.criterion(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss, logits
