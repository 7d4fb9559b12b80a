"""Each imbalance loss pinned to its formula on hand-computed cases, and one real effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.models import build_model
from classwise.training import TrainConfig, fit, predict_proba
from classwise.training.losses import build_criterion, effective_number_weights, ldam_margins

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 1.2], [-0.4, 1.5, 0.0]])
LABELS = torch.tensor([0, 2, 1])
COUNTS = torch.tensor([100, 10, 1])


def test_cross_entropy_matches_torch_with_smoothing_and_soft_targets():
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
    crit = build_criterion("cross_entropy", {}, COUNTS, label_smoothing=0.1)
    assert torch.allclose(crit(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS, label_smoothing=0.1))
    assert torch.allclose(crit(LOGITS, soft), F.cross_entropy(LOGITS, soft, label_smoothing=0.1))


def test_balanced_softmax_with_uniform_prior_equals_cross_entropy():
    crit = build_criterion("balanced_softmax", {}, torch.tensor([7, 7, 7]))
    assert torch.allclose(crit(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS))


def test_balanced_softmax_adds_log_prior():
    crit = build_criterion("balanced_softmax", {}, COUNTS)
    prior = COUNTS.float() / COUNTS.sum()
    # -log( n_y e^{z_y} / sum_j n_j e^{z_j} ) for the first image, by hand
    z, y = LOGITS[0], 0
    by_hand = -math.log(prior[y] * math.exp(z[y]) / sum(prior[j] * math.exp(z[j]) for j in range(3)))
    per_image = build_criterion("balanced_softmax", {}, COUNTS)(LOGITS[:1], LABELS[:1])
    assert per_image.item() == pytest.approx(by_hand, rel=1e-5)
    assert crit(LOGITS, LABELS).item() != pytest.approx(F.cross_entropy(LOGITS, LABELS).item())


def test_logit_adjustment_tau_zero_is_a_no_op_and_tau_one_is_balanced_softmax():
    ce = F.cross_entropy(LOGITS, LABELS)
    assert torch.allclose(build_criterion("logit_adjusted", {"tau": 0.0}, COUNTS)(LOGITS, LABELS), ce)
    assert torch.allclose(
        build_criterion("logit_adjusted", {"tau": 1.0}, COUNTS)(LOGITS, LABELS),
        build_criterion("balanced_softmax", {}, COUNTS)(LOGITS, LABELS),
    )


def test_ldam_margins_follow_n_to_the_minus_quarter_with_the_largest_as_set():
    m = ldam_margins(torch.tensor([10000, 16, 1]), max_margin=0.5)
    assert m.tolist() == pytest.approx([0.05, 0.25, 0.5])  # 10000^-1/4 = 0.1, 16^-1/4 = 0.5, 1^-1/4 = 1


def test_ldam_loss_lowers_the_label_logit_by_its_margin_then_scales():
    crit = build_criterion("ldam", {"max_margin": 0.5, "scale": 2.0}, COUNTS)
    margins = ldam_margins(COUNTS, 0.5)
    shifted = LOGITS.clone()
    shifted[torch.arange(3), LABELS] -= margins[LABELS]
    assert torch.allclose(crit(LOGITS, LABELS), F.cross_entropy(2.0 * shifted, LABELS))


def test_effective_number_weights_by_hand():
    w = effective_number_weights(torch.tensor([1, 2]), beta=0.5)
    raw = [0.5 / (1 - 0.5), 0.5 / (1 - 0.25)]  # (1 - beta) / (1 - beta^n)
    assert w.tolist() == pytest.approx([2 * r / sum(raw) for r in raw])


def test_class_balanced_loss_weights_each_image_by_its_class():
    crit = build_criterion("class_balanced", {"beta": 0.9}, COUNTS)
    w = effective_number_weights(COUNTS, 0.9)
    expected = (F.cross_entropy(LOGITS, LABELS, reduction="none") * w[LABELS]).mean()
    assert torch.allclose(crit(LOGITS, LABELS), expected)


def test_focal_with_gamma_zero_equals_cross_entropy_and_gamma_two_by_hand():
    ce = F.cross_entropy(LOGITS, LABELS)
    assert torch.allclose(build_criterion("focal", {"gamma": 0.0}, COUNTS)(LOGITS, LABELS), ce)
    p = torch.softmax(LOGITS, 1)[torch.arange(3), LABELS]
    expected = (-(1 - p) ** 2 * torch.log(p)).mean()
    assert torch.allclose(build_criterion("focal", {"gamma": 2.0}, COUNTS)(LOGITS, LABELS), expected)


def test_drw_weights_switch_at_the_epoch_and_not_before():
    crit = build_criterion("cross_entropy", {"beta": 0.9}, COUNTS, drw_epoch=3)
    ce = F.cross_entropy(LOGITS, LABELS)
    weighted = (F.cross_entropy(LOGITS, LABELS, reduction="none") * effective_number_weights(COUNTS, 0.9)[LABELS]).mean()
    for epoch in range(3):
        crit.set_epoch(epoch)
        assert torch.allclose(crit(LOGITS, LABELS), ce)
    for epoch in (3, 4):
        crit.set_epoch(epoch)
        assert torch.allclose(crit(LOGITS, LABELS), weighted)


def test_config_refuses_unknown_options_and_undefined_combinations():
    with pytest.raises(ConfigError, match="train.loss_options.*'tau'.*'ldam'"):
        parse(TrainConfig, {"loss": "ldam", "loss_options": {"tau": 1.0}}, "train")
    with pytest.raises(ConfigError, match="train.cutmix_p"):
        parse(TrainConfig, {"loss": "ldam", "cutmix_p": 0.5}, "train")
    with pytest.raises(ConfigError, match="train.loss_options.gamma"):
        parse(TrainConfig, {"loss": "focal", "loss_options": {"gamma": -1}}, "train")
    with pytest.raises(ConfigError, match="train.loss"):
        parse(TrainConfig, {"loss": "hinge"}, "train")
    # beta becomes an option of any loss once DRW is on; soft targets work with balanced softmax
    parse(TrainConfig, {"loss": "balanced_softmax", "drw_epoch": 2, "loss_options": {"beta": 0.99}}, "train")
    parse(TrainConfig, {"loss": "balanced_softmax", "cutmix_p": 0.5, "label_smoothing": 0.1}, "train")


def _long_tailed_blobs(counts: list[int], seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is a mean colour plus heavy noise: overlapping, so the prior matters."""
    rng = np.random.default_rng(seed)
    centres = np.linspace(70, 185, len(counts))
    images, labels = [], []
    for c, n in enumerate(counts):
        base = np.stack([centres[c], centres[::-1][c], 128.0])
        x = base + rng.normal(0, 55, size=(n, size, size, 3))
        images.append(np.clip(x, 0, 255).astype(np.uint8))
        labels.append(np.full(n, c))
    return np.concatenate(images), np.concatenate(labels)


def _tail_recall(loss: str, drw_epoch: int | None, x, y, xv, yv, tail: list[int]) -> float:
    cfg = TrainConfig(
        model="preact_resnet18", model_options={"width": 4}, epochs=4, batch_size=32, lr=0.05,
        milestones=[3], augment="none", device="cpu", progress=False, loss=loss, drw_epoch=drw_epoch,
        eval_batch_size=256, weight_decay=0.0, label_smoothing=0.0, oversample=False, cutmix_p=0.0,
    )
    result = fit(x, y, xv, yv, 4, [0.5] * 3, [0.25] * 3, cfg)
    net = build_model(cfg.model, 4, **cfg.model_options)
    net.load_state_dict(result.best_state)
    predicted = predict_proba(net, xv, [0.5] * 3, [0.25] * 3, device="cpu").argmax(1)
    mask = np.isin(yv, tail)
    return float((predicted[mask] == yv[mask]).mean())


def test_balanced_softmax_and_ldam_drw_raise_tail_recall_over_cross_entropy():
    counts = [300, 150, 15, 8]
    x, y = _long_tailed_blobs(counts, seed=1)
    xv, yv = _long_tailed_blobs([60] * 4, seed=2)
    tail = [2, 3]
    plain = _tail_recall("cross_entropy", None, x, y, xv, yv, tail)
    balanced = _tail_recall("balanced_softmax", None, x, y, xv, yv, tail)
    ldam_drw = _tail_recall("ldam", 2, x, y, xv, yv, tail)
    assert balanced > plain + 0.1
    assert ldam_drw > plain + 0.1


def test_soft_targets_weight_each_image_by_its_mass_on_each_class():
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.25, 0.75], [0.5, 0.5, 0.0]])
    w = effective_number_weights(COUNTS, 0.9)
    crit = build_criterion("class_balanced", {"beta": 0.9}, COUNTS)
    expected = (F.cross_entropy(LOGITS, soft, reduction="none") * (soft @ w)).mean()
    assert torch.allclose(crit(LOGITS, soft), expected)
    # focal with soft targets: sum over classes of t_c (1 - p_c)^gamma (-log p_c)
    p = torch.softmax(LOGITS, 1)
    focal = (soft * (1 - p) ** 2 * -torch.log(p)).sum(1).mean()
    assert torch.allclose(build_criterion("focal", {"gamma": 2.0}, COUNTS)(LOGITS, soft), focal)


def test_balanced_softmax_trains_with_cutmix_and_label_smoothing():
    x, y = _long_tailed_blobs([40, 10], seed=3)
    cfg = TrainConfig(model="preact_resnet18", model_options={"width": 4}, epochs=1, batch_size=16,
                      augment="none", device="cpu", progress=False, loss="balanced_softmax", cutmix_p=1.0,
                      label_smoothing=0.1, drw_epoch=0)
    result = fit(x, y, x[:8], y[:8], 2, [0.5] * 3, [0.25] * 3, cfg)
    assert math.isfinite(result.history[0]["train_loss"])
