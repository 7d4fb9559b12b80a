"""Training core: the loop, the batch source, the step, augmentation, CutMix, sampling, schedules,
checkpoints. Torch, torchvision and numpy only."""

from ..inference import Normalizer, predict_logits, predict_proba, resolve_device, to_device_images
from .batches import DeviceBatches
from .cutmix import cutmix
from .loop import TrainConfig, TrainResult, fit
from .sampling import class_balanced_indices, epoch_indices
from .schedule import step_lr
from .step import TrainStep

__all__ = [
    "DeviceBatches", "Normalizer", "TrainConfig", "TrainResult", "TrainStep", "class_balanced_indices", "cutmix",
    "epoch_indices", "fit", "predict_logits", "predict_proba", "resolve_device", "step_lr", "to_device_images",
]
