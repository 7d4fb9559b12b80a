"""CIFAR-style classifiers (3x3 stem, no max-pool) behind one registry. Torch only."""

from .preact import preact_resnet18
from .registry import available_models, build_model, register

register("preact_resnet18", preact_resnet18)

__all__ = ["available_models", "build_model", "register"]
