"""CIFAR-style classifiers (3x3 stem, no max-pool) behind one registry. Torch only.

Variants are data: each name is a builder with defaults (depth, widen, width,
SE reduction, pre-activation), and ``build_model(name, classes, **options)``
overrides them, e.g. ``build_model("wrn", 10, depth=16, widen=4)`` or
``build_model("resnet18", 10, width=8)`` for a small CPU-sized network. Each builder
registers itself beside its definition (``@registered``); importing the modules here
fills the registry.
"""

from classwise.models import densenet, preact, resnet, resnext, wrn  # noqa: F401  (registers their builders)
from classwise.models.registry import available_models, build_model, register

__all__ = ["available_models", "build_model", "register"]
