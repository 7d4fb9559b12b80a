"""Squeeze-and-Excitation (Hu et al. 2018) and the SE variants of the residual networks.

The SE block rescales each channel of a residual branch by a gate computed from
the branch's global average; it is switched on in any block with
``se_reduction > 0``, so SE networks are the plain ones with one more number.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Global average pool -> FC (C/r) -> ReLU -> FC (C) -> sigmoid -> channel scale."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * gate


def se_resnet18(num_classes: int, width: int = 64, se_reduction: int = 16) -> nn.Module:
    """ResNet-18 with an SE gate on every block's residual branch (~11.26 M for 10 classes)."""
    from .resnet import resnet18

    return resnet18(num_classes, width=width, se_reduction=se_reduction)


def se_wrn_28_10(
    num_classes: int, depth: int = 28, widen: int = 10, width: int = 16, se_reduction: int = 16
) -> nn.Module:
    """Post-activation WRN-28-10 with SE gates (~36.9 M for 10 classes)."""
    from .wrn import wrn

    return wrn(num_classes, depth=depth, widen=widen, width=width, preact=False, se_reduction=se_reduction)


def preact_se_wrn_28_10(
    num_classes: int, depth: int = 28, widen: int = 10, width: int = 16, se_reduction: int = 16
) -> nn.Module:
    """Pre-activation WRN-28-10 with SE gates: the seed's final model."""
    from .wrn import wrn

    return wrn(num_classes, depth=depth, widen=widen, width=width, preact=True, se_reduction=se_reduction)
