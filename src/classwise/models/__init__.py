"""CIFAR-style classifiers (3x3 stem, no max-pool) behind one registry. Torch only.

Variants are data: each name is a builder with defaults (depth, widen, width,
SE reduction, pre-activation), and ``build_model(name, classes, **options)``
overrides them, e.g. ``build_model("wrn", 10, depth=16, widen=4)`` or
``build_model("resnet18", 10, width=8)`` for a small CPU-sized network.
"""

from .densenet import densenet_bc, densenet_bc_100
from .preact import preact_resnet18
from .registry import available_models, build_model, register
from .resnet import resnet18, resnet50
from .resnext import resnext, resnext29_8x64d
from .se import preact_se_wrn_28_10, se_resnet18, se_wrn_28_10
from .wrn import preact_wrn_28_10, wrn, wrn_28_10

for _builder in (
    resnet18, resnet50, preact_resnet18, resnext29_8x64d, densenet_bc_100, wrn_28_10,
    preact_wrn_28_10, se_resnet18, se_wrn_28_10, preact_se_wrn_28_10,
    # Generic builders, for variants by depth and width.
    wrn, resnext, densenet_bc,
):
    register(_builder.__name__, _builder)

__all__ = ["available_models", "build_model", "register"]
