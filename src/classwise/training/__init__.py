"""Training core: the loop, the batch source, the step, augmentation, CutMix, sampling, schedules,
checkpoints. Torch, torchvision and numpy only."""

from classwise.core.device import Normalizer, predict_logits, predict_proba, resolve_device, to_device_images
from classwise.training.batches import DeviceBatches
from classwise.training.cutmix import cutmix
from classwise.training.config import TrainConfig
from classwise.training.loop import TrainResult, fit
from classwise.training.sampling import class_balanced_indices, epoch_indices
from classwise.training.schedule import lr_at, step_lr
from classwise.training.step import TrainStep

__all__ = [
    "DeviceBatches", "Normalizer", "TrainConfig", "TrainResult", "TrainStep", "class_balanced_indices", "cutmix",
    "epoch_indices", "fit", "lr_at", "predict_logits", "predict_proba", "resolve_device", "step_lr",
    "to_device_images",
]
