"""Learning-rate schedules as pure functions of the epoch."""

from __future__ import annotations

from collections.abc import Sequence


def step_lr(epoch: int, base_lr: float, milestones: Sequence[int], gamma: float) -> float:
    """The lr for 0-based ``epoch``: ``base_lr`` times ``gamma`` per milestone reached.

    With milestones (60, 90) and gamma 0.1 (the seed's recipe), epochs 0-59 train at
    base_lr, 60-89 at base_lr/10 and 90 onward at base_lr/100, as torch's MultiStepLR.
    """
    return base_lr * gamma ** sum(epoch >= m for m in milestones)


def one_cycle_lr(step: int, total_steps: int, base_lr: float, warmup: float) -> float:
    """The lr for 0-based training ``step`` of ``total_steps`` under a one-cycle schedule.

    It rises linearly from ``base_lr``/10 to ``base_lr`` over the first ``warmup`` share of the steps,
    then falls linearly to 0 at the end of the run: the short-budget schedule of fast CIFAR training
    (Smith's one-cycle, the airbench family), set every step.
    """
    progress = step / max(total_steps, 1)
    if progress < warmup:
        return base_lr * (0.1 + 0.9 * progress / warmup)
    return base_lr * max(0.0, 1.0 - progress) / (1.0 - warmup)


def lr_at(cfg, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The lr of ``cfg`` (a TrainConfig) for 0-based ``step`` of 0-based ``epoch``."""
    if cfg.schedule == "one_cycle":
        return one_cycle_lr(epoch * steps_per_epoch + step, cfg.epochs * steps_per_epoch, cfg.lr, cfg.warmup)
    return step_lr(epoch, cfg.lr, cfg.milestones, cfg.gamma)
