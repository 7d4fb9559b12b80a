"""Learning-rate schedules as pure functions of the epoch."""

from __future__ import annotations

from collections.abc import Sequence


def step_lr(epoch: int, base_lr: float, milestones: Sequence[int], gamma: float) -> float:
    """The lr for 0-based ``epoch``: ``base_lr`` times ``gamma`` per milestone reached.

    With milestones (60, 90) and gamma 0.1 (the seed's recipe), epochs 0-59 train at
    base_lr, 60-89 at base_lr/10 and 90 onward at base_lr/100, as torch's MultiStepLR.
    """
    return base_lr * gamma ** sum(epoch >= m for m in milestones)
