"""Squeeze-and-Excitation (Hu et al. 2018): the channel gate of the SE networks.

The SE block rescales each channel of a residual branch by a gate computed from
the branch's global average; it is switched on in any block with
``se_reduction > 0``, so SE networks are the plain ones with one more number
(se_resnet18 in resnet.py, se_wrn_28_10 and preact_se_wrn_28_10 in wrn.py).
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
