"""Residual networks for 32x32 inputs: the blocks and one network built from stage data.

Every residual family here (ResNet, pre-activation ResNet, WRN, ResNeXt and their
SE variants) is a ``ResNet`` with different data: the block kind, pre- or
post-activation, the SE reduction, groups, and a list of stages. CIFAR-style:
a 3x3 stem convolution, no max-pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from classwise.models.registry import registered
from classwise.models.se import SqueezeExcite


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (the WRN paper's "basic-wide" block B(3,3)).

    ``preact=False``: conv-BN-ReLU-conv-BN (+SE), add the shortcut, ReLU (He et al. 2015).
    ``preact=True``: BN-ReLU-conv-BN-ReLU-conv (+SE), add the shortcut (He et al. 2016).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, preact: bool = False,
                 se_reduction: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.preact = preact
        self.bn1 = nn.BatchNorm2d(in_ch if preact else out_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.se = SqueezeExcite(out_ch, se_reduction) if se_reduction > 0 else nn.Identity()
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            conv = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
            # Pre-activation projects the already normalised input, so it needs no BN of its own.
            self.shortcut = conv if preact else nn.Sequential(conv, nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            out = torch.relu(self.bn1(x))
            shortcut = self.shortcut(out) if self.shortcut is not None else x
            out = self.conv1(out)
            out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
            return self.se(out) + shortcut
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.dropout(out)))
        return torch.relu(self.se(out) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand; post-activation (+SE)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, mid_ch: int, groups: int = 1,
                 se_reduction: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.se = SqueezeExcite(out_ch, se_reduction) if se_reduction > 0 else nn.Identity()
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(self.se(out) + shortcut)


# A stage: (number of blocks, output channels, stride of its first block, extra block kwargs).
Stage = tuple[int, int, int, dict]


class ResNet(nn.Module):
    """Stem conv 3x3 -> stages of blocks -> (BN-ReLU if pre-activation) -> global pool -> FC."""

    def __init__(self, block: Callable[..., nn.Module], stages: Sequence[Stage], num_classes: int,
                 stem_width: int, preact: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, stem_width, 3, 1, 1, bias=False)
        # Post-activation nets normalise the stem; pre-activation blocks do it themselves.
        self.stem_bn = nn.Identity() if preact else nn.BatchNorm2d(stem_width)
        self.stem_act = nn.Identity() if preact else nn.ReLU()
        layers, in_ch = [], stem_width
        for n_blocks, out_ch, stride, extra in stages:
            for i in range(n_blocks):
                layers.append(block(in_ch, out_ch, stride if i == 0 else 1, **extra))
                in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.final_bn = nn.BatchNorm2d(in_ch) if preact else nn.Identity()
        self.final_act = nn.ReLU() if preact else nn.Identity()
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.stem_act(self.stem_bn(self.stem(x))))
        out = self.final_act(self.final_bn(out))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def basic_resnet(num_classes: int, blocks: Sequence[int], width: int = 64, preact: bool = False,
                 se_reduction: int = 0) -> ResNet:
    """ResNet of basic blocks, four stages of width, 2x, 4x, 8x channels."""
    def block(i, o, s):
        return BasicBlock(i, o, s, preact=preact, se_reduction=se_reduction)

    stages = [(n, width * 2**k, 1 if k == 0 else 2, {}) for k, n in enumerate(blocks)]
    return ResNet(block, stages, num_classes, width, preact)


@registered
def resnet18(num_classes: int, width: int = 64, se_reduction: int = 0) -> ResNet:
    """ResNet-18, CIFAR-style (11.17 M parameters for 10 classes at width 64)."""
    return basic_resnet(num_classes, [2, 2, 2, 2], width, preact=False, se_reduction=se_reduction)


@registered
def resnet50(num_classes: int, width: int = 64, se_reduction: int = 0) -> ResNet:
    """ResNet-50, CIFAR-style bottlenecks with 4x expansion (23.52 M for 10 classes at width 64)."""
    def block(i, o, s):
        return Bottleneck(i, o, s, mid_ch=o // 4, se_reduction=se_reduction)

    stages = [(n, 4 * width * 2**k, 1 if k == 0 else 2, {}) for k, n in enumerate([3, 4, 6, 3])]
    return ResNet(block, stages, num_classes, width)


@registered
def se_resnet18(num_classes: int, width: int = 64, se_reduction: int = 16) -> ResNet:
    """ResNet-18 with an SE gate on every block's residual branch (~11.26 M for 10 classes)."""
    return resnet18(num_classes, width=width, se_reduction=se_reduction)
