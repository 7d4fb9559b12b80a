"""Pre-activation ResNet (He et al. 2016, "Identity Mappings"): BN-ReLU before each conv."""

from __future__ import annotations

from classwise.models.registry import registered
from classwise.models.resnet import ResNet, basic_resnet


@registered
def preact_resnet18(num_classes: int, width: int = 64, se_reduction: int = 0) -> ResNet:
    """Pre-activation ResNet-18, CIFAR-style (11.17 M parameters for 10 classes at width 64)."""
    return basic_resnet(num_classes, [2, 2, 2, 2], width, preact=True, se_reduction=se_reduction)
