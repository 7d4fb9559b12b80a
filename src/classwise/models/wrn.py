"""Wide ResNets (Zagoruyko & Komodakis 2016) of basic-wide blocks B(3,3): depth, widen as data.

WRN-d-k has three stages of (d - 4) / 6 blocks with 16k, 32k, 64k channels after
a 16-channel stem. The paper's own code orders each block BN-ReLU-conv
(``preact=True``, also registered as ``preact_wrn_28_10``); ``wrn_28_10`` is the
post-activation block, so that the ``preact_`` prefix means the same in every name.
"""

from __future__ import annotations

from classwise.models.registry import registered
from classwise.models.resnet import BasicBlock, ResNet
from classwise.core.errors import ConfigError


@registered
def wrn(num_classes: int, depth: int = 28, widen: int = 10, width: int = 16, preact: bool = False,
        se_reduction: int = 0, dropout: float = 0.0) -> ResNet:
    """WRN-``depth``-``widen``; ``width`` is the stem (16 in the paper) and scales every stage."""
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}.")
    n = (depth - 4) // 6

    def block(i, o, s):
        return BasicBlock(i, o, s, preact=preact, se_reduction=se_reduction, dropout=dropout)

    stages = [(n, width * widen * 2**k, 1 if k == 0 else 2, {}) for k in range(3)]
    return ResNet(block, stages, num_classes, width, preact)


@registered
def wrn_28_10(num_classes: int, depth: int = 28, widen: int = 10, width: int = 16, dropout: float = 0.0) -> ResNet:
    """WRN-28-10, post-activation basic-wide blocks (36.5 M parameters for 10 classes)."""
    return wrn(num_classes, depth, widen, width, preact=False, dropout=dropout)


@registered
def preact_wrn_28_10(num_classes: int, depth: int = 28, widen: int = 10, width: int = 16,
                     dropout: float = 0.0) -> ResNet:
    """WRN-28-10 as in the paper's code: pre-activation basic-wide blocks (36.48 M for 10 classes)."""
    return wrn(num_classes, depth, widen, width, preact=True, dropout=dropout)


@registered
def se_wrn_28_10(num_classes: int, depth: int = 28, widen: int = 10, width: int = 16,
                 se_reduction: int = 16) -> ResNet:
    """Post-activation WRN-28-10 with SE gates (~36.9 M for 10 classes)."""
    return wrn(num_classes, depth=depth, widen=widen, width=width, preact=False, se_reduction=se_reduction)


@registered
def preact_se_wrn_28_10(num_classes: int, depth: int = 28, widen: int = 10, width: int = 16,
                        se_reduction: int = 16) -> ResNet:
    """Pre-activation WRN-28-10 with SE gates: the seed's final model."""
    return wrn(num_classes, depth=depth, widen=widen, width=width, preact=True, se_reduction=se_reduction)
