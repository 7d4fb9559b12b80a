"""ResNeXt for CIFAR (Xie et al. 2017): grouped bottlenecks, cardinality and width as data."""

from __future__ import annotations

from classwise.models.registry import registered
from classwise.models.resnet import Bottleneck, ResNet
from classwise.core.errors import ConfigError


@registered
def resnext(num_classes: int, depth: int = 29, cardinality: int = 8, bottleneck_width: int = 64,
            width: int = 64, se_reduction: int = 0) -> ResNet:
    """ResNeXt-``depth`` (``cardinality`` x ``bottleneck_width``d): three stages of (depth - 2) / 9 blocks.

    Stage k has ``cardinality * bottleneck_width * 2**k`` channels inside its blocks and
    ``4 * width * 2**k`` (256, 512, 1024 in the paper) at their outputs.
    """
    if depth < 11 or (depth - 2) % 9:
        raise ConfigError(f"ResNeXt depth must be 9n + 2 with n >= 1 (11, 20, 29, ...), got {depth}.")
    n = (depth - 2) // 9

    def block(i, o, s, mid):
        return Bottleneck(i, o, s, mid_ch=mid, groups=cardinality, se_reduction=se_reduction)

    stages = [(n, 4 * width * 2**k, 1 if k == 0 else 2, {"mid": cardinality * bottleneck_width * 2**k})
              for k in range(3)]
    return ResNet(block, stages, num_classes, width)


@registered
def resnext29_8x64d(num_classes: int, depth: int = 29, cardinality: int = 8, bottleneck_width: int = 64,
                    width: int = 64) -> ResNet:
    """ResNeXt-29 (8 x 64d), 34.43 M parameters for 10 classes."""
    return resnext(num_classes, depth, cardinality, bottleneck_width, width)
