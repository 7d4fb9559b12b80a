"""Training core: the loop, augmentation, schedules. Torch, torchvision and numpy only."""

from .loop import TrainConfig, TrainResult, fit, predict_proba, resolve_device
from .schedule import step_lr

__all__ = ["TrainConfig", "TrainResult", "fit", "predict_proba", "resolve_device", "step_lr"]
