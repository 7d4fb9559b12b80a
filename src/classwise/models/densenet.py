"""DenseNet-BC (Huang et al. 2017) for 32x32 inputs: depth, growth rate and compression as data."""

from __future__ import annotations

import torch
from torch import nn

from classwise.models.registry import registered
from classwise.core.errors import ConfigError


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4k) -> BN-ReLU-conv3x3 (k), concatenated to the input."""

    def __init__(self, in_ch: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compress channels) -> 2x2 average pool."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    def __init__(self, num_classes: int, depth: int = 100, growth: int = 12, compression: float = 0.5) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError(f"DenseNet-BC depth must be 6n + 4 (40, 100, 190, ...), got {depth}.")
        n = (depth - 4) // 6  # bottleneck layers per dense block (two convolutions each)
        ch = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 3, 1, 1, bias=False)]
        for stage in range(3):
            for _ in range(n):
                layers.append(DenseLayer(ch, growth))
                ch += growth
            if stage < 2:
                out = int(ch * compression)
                layers.append(Transition(ch, out))
                ch = out
        layers += [nn.BatchNorm2d(ch), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


@registered
def densenet_bc(num_classes: int, depth: int = 100, growth: int = 12, compression: float = 0.5) -> DenseNet:
    return DenseNet(num_classes, depth, growth, compression)


@registered
def densenet_bc_100(num_classes: int, depth: int = 100, growth: int = 12, compression: float = 0.5) -> DenseNet:
    """DenseNet-BC-100 with growth rate k = 12 (0.77 M parameters for 10 classes)."""
    return DenseNet(num_classes, depth, growth, compression)
