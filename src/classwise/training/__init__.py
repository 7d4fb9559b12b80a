"""Training core: the loop, augmentation, CutMix, sampling, schedules, checkpoints. Torch, torchvision and numpy only."""

from .cutmix import cutmix
from .loop import TrainConfig, TrainResult, fit, predict_proba, resolve_device
from .sampling import class_balanced_indices, epoch_indices
from .schedule import step_lr

__all__ = [
    "TrainConfig", "TrainResult", "class_balanced_indices", "cutmix", "epoch_indices", "fit",
    "predict_proba", "resolve_device", "step_lr",
]
