"""Training losses for imbalanced data, built once from the config and the train subset's class counts.

Every loss is a cross-entropy against a target distribution (hard labels, label
smoothing or CutMix's soft targets) on logits that may be shifted by the class
prior, with optional per-class weights and focal modulation:

- ``cross_entropy``: plain softmax cross-entropy.
- ``balanced_softmax`` (Ren et al. 2020): logits + log prior during training.
- ``logit_adjusted`` (Menon et al. 2021): logits + tau * log prior during training.
- ``ldam`` (Cao et al. 2019): the label's logit lowered by a margin proportional to
  n^-1/4 (largest margin ``max_margin``), all logits times ``scale``.
- ``class_balanced`` (Cui et al. 2019): weights (1 - beta) / (1 - beta^n), normalised
  to sum to the number of classes.
- ``focal`` (Lin et al. 2017): each class's term times (1 - p)^gamma, optionally with
  the class-balanced weights.

Deferred re-weighting (DRW, Cao et al. 2019) switches to the effective-number
weights from ``drw_epoch`` on, with any loss. A per-sample weight is the target's
mass on each class times that class's weight, so soft targets keep their meaning;
the batch mean is taken over samples (as Cui et al.), not over weights. Torch only;
the step never waits on the host: the weights are chosen by the epoch on the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from classwise.core.config import block_name
from classwise.core.errors import ConfigError

LOSSES = ("cross_entropy", "balanced_softmax", "logit_adjusted", "ldam", "class_balanced", "focal")
DRW_BETA = 0.9999  # Cao et al.'s effective-number beta for the deferred weights

# Options each loss accepts, with their defaults. ``beta`` is also accepted by every loss
# when train.drw_epoch is set: it is then the deferred weights' beta.
LOSS_OPTIONS: dict[str, dict[str, Any]] = {
    "cross_entropy": {},
    "balanced_softmax": {},
    "logit_adjusted": {"tau": 1.0},
    # The paper's scale 30 assumes a normalised (cosine) classifier; Classwise's networks end in
    # a plain linear layer, whose logits are already on that scale, so the default is 1.
    "ldam": {"max_margin": 0.5, "scale": 1.0},
    "class_balanced": {"beta": 0.9999},
    "focal": {"gamma": 1.0, "class_balanced": False, "beta": 0.9999},
}


def loss_options(loss: str, options: Mapping[str, Any], drw_epoch: int | None) -> dict[str, Any]:
    """The chosen loss's options with defaults filled in; unknown or out-of-range options refused."""
    block = block_name("train")
    if loss not in LOSS_OPTIONS:
        raise ConfigError(f"Parameter '{block}.loss' is '{loss}'; use one of {', '.join(LOSSES)}.")
    known = dict(LOSS_OPTIONS[loss])
    if drw_epoch is not None:
        known.setdefault("beta", DRW_BETA)
    unknown = sorted(set(options) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"Parameter '{block}.loss_options' has {', '.join(repr(k) for k in unknown)}, which loss "
            f"'{loss}' does not take (it takes: {allowed}); remove it or change {block}.loss."
        )
    merged = {**known, **options}
    for key, value in merged.items():
        default = known[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"Parameter '{block}.loss_options.{key}' must be true or false, got {value!r}.")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"Parameter '{block}.loss_options.{key}' must be a number, got {value!r}.")
    checks = {
        "tau": (lambda v: v >= 0, "0 or more"),
        "max_margin": (lambda v: v > 0, "above 0"),
        "scale": (lambda v: v > 0, "above 0"),
        "gamma": (lambda v: v >= 0, "0 or more"),
        "beta": (lambda v: 0 <= v < 1, "in [0, 1)"),
    }
    for key, (ok, wanted) in checks.items():
        if key in merged and not ok(merged[key]):
            raise ConfigError(f"Parameter '{block}.loss_options.{key}' is {merged[key]}; set it {wanted}.")
    return merged


def check_loss_combination(loss: str, cutmix_p: float) -> None:
    """Refuse combinations whose math is not defined."""
    block = block_name("train")
    if loss == "ldam" and cutmix_p > 0:
        raise ConfigError(
            f"Parameter '{block}.loss' is 'ldam', whose margin belongs to one label per image, but "
            f"{block}.cutmix_p is {cutmix_p} (two labels per image); set {block}.cutmix_p to 0 or choose "
            f"another {block}.loss."
        )


def effective_number_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Cui et al.'s (1 - beta) / (1 - beta^n) per class, normalised to sum to the number of classes."""
    n = counts.to(torch.float64).clamp(min=1)
    weights = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    return (weights * len(n) / weights.sum()).to(torch.float32)


def ldam_margins(counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """Per-class margins proportional to n^-1/4, the rarest class's equal to ``max_margin``."""
    m = counts.to(torch.float64).clamp(min=1).pow(-0.25)
    return (m * (max_margin / m.max())).to(torch.float32)


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """log(n_c / N); a class without training images counts as one, to keep it finite."""
    n = counts.to(torch.float64).clamp(min=1)
    return torch.log(n / n.sum()).to(torch.float32)


@dataclass
class ImbalanceLoss:
    """Callable ``(logits, target) -> scalar loss``; ``target`` is integer labels or (B, C) probabilities.

    Call ``set_epoch`` at the start of every epoch: it picks the weights DRW uses then.
    """

    logit_offset: torch.Tensor | None  # added to the logits (balanced softmax, logit adjustment)
    margins: torch.Tensor | None  # LDAM: subtracted from the label's logit
    scale: float  # logits multiplied by this (LDAM's s; 1 otherwise)
    gamma: float  # focal exponent (0 = plain cross-entropy)
    weights: torch.Tensor | None  # per-class weights from the first epoch
    deferred_weights: torch.Tensor | None  # DRW: per-class weights from ``drw_epoch`` on
    drw_epoch: int | None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        self.active_weights = self.weights if self.drw_epoch is None else None

    def set_epoch(self, epoch: int) -> None:
        """0-based epoch; a host-side choice, so no step waits on the device."""
        if self.drw_epoch is not None:
            self.active_weights = self.deferred_weights if epoch >= self.drw_epoch else None

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        logits = logits.float()
        if self.margins is None and self.gamma == 0 and self.active_weights is None:
            # Cross-entropy on (possibly shifted) logits: torch's fused kernel, same definition.
            if self.logit_offset is not None:
                logits = logits + self.logit_offset
            return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        if target.dim() == 1:
            probs = F.one_hot(target, num_classes).to(logits.dtype)
        else:
            probs = target.to(logits.dtype)
        if self.margins is not None:  # only with hard labels (refused with CutMix); before smoothing
            logits = logits - probs * self.margins
        if self.logit_offset is not None:
            logits = logits + self.logit_offset
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.label_smoothing > 0:  # torch's definition: mix with the uniform distribution
            probs = probs * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        log_p = F.log_softmax(logits, dim=1)
        terms = -probs * log_p
        if self.gamma > 0:
            terms = terms * (1.0 - log_p.exp()).pow(self.gamma)
        per_sample = terms.sum(1)
        if self.active_weights is not None:
            per_sample = per_sample * (probs @ self.active_weights)
        return per_sample.mean()


def build_criterion(
    loss: str,
    options: Mapping[str, Any],
    class_counts: torch.Tensor,
    label_smoothing: float = 0.0,
    drw_epoch: int | None = None,
) -> ImbalanceLoss:
    """The training loss for ``loss`` with ``options``, from the train subset's class counts.

    ``class_counts`` lives on the training device; every derived tensor stays there.
    """
    opts = loss_options(loss, options, drw_epoch)
    counts = class_counts.detach()
    device = counts.device
    offset = margins = weights = deferred = None
    scale, gamma = 1.0, 0.0
    if loss == "balanced_softmax":
        offset = log_prior(counts)
    elif loss == "logit_adjusted" and opts["tau"] > 0:
        offset = opts["tau"] * log_prior(counts)
    elif loss == "ldam":
        margins, scale = ldam_margins(counts, opts["max_margin"]), float(opts["scale"])
    elif loss == "class_balanced":
        weights = effective_number_weights(counts, opts["beta"])
    elif loss == "focal":
        gamma = float(opts["gamma"])
        if opts["class_balanced"]:
            weights = effective_number_weights(counts, opts["beta"])
    if drw_epoch is not None:
        deferred = effective_number_weights(counts, opts["beta"])
    to = (lambda t: None if t is None else t.to(device))  # noqa: E731
    return ImbalanceLoss(
        logit_offset=to(offset), margins=to(margins), scale=scale, gamma=gamma, weights=to(weights),
        deferred_weights=to(deferred), drw_epoch=drw_epoch, label_smoothing=float(label_smoothing),
    )


def describe(criterion: ImbalanceLoss) -> str:
    """One line for the log."""
    parts = []
    if criterion.logit_offset is not None:
        parts.append("prior-shifted logits")
    if criterion.margins is not None:
        parts.append(f"LDAM margins up to {float(criterion.margins.max()):.3g}, scale {criterion.scale:g}")
    if criterion.gamma > 0:
        parts.append(f"focal gamma {criterion.gamma:g}")
    if criterion.weights is not None:
        parts.append("class-balanced weights")
    if criterion.drw_epoch is not None:
        parts.append(f"deferred re-weighting from epoch {criterion.drw_epoch + 1}")
    return ", ".join(parts) or "plain cross-entropy"


__all__ = [
    "DRW_BETA", "LOSSES", "LOSS_OPTIONS", "ImbalanceLoss", "build_criterion", "check_loss_combination",
    "describe", "effective_number_weights", "ldam_margins", "log_prior", "loss_options",
]
