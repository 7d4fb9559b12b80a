"""Folds: stratified and seeded, refused when a class is too small, checkpointed per fold."""

from __future__ import annotations

import numpy as np
import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.diagnosis import DiagnoseConfig, check_fold_sizes, out_of_fold_probabilities, stratified_folds
from classwise.diagnosis import folds as folds_module
from classwise.models import build_model
from classwise.training import TrainConfig, predict_proba
from tests.conftest import make_images


def test_folds_spread_every_class_evenly_and_repeat_with_the_seed():
    labels = np.repeat([0, 1, 2], [40, 13, 8])
    folds = stratified_folds(labels, 4, seed=3)
    for c in range(3):
        per_fold = np.bincount(folds[labels == c], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1
    assert np.array_equal(folds, stratified_folds(labels, 4, seed=3))
    assert not np.array_equal(folds, stratified_folds(labels, 4, seed=4))


def test_a_class_smaller_than_the_folds_is_named_with_the_fix():
    with pytest.raises(ConfigError, match=r"'otter' has 3 images, fewer than diagnose.folds=4; lower diagnose.folds"):
        check_fold_sizes(np.repeat([0, 1], [10, 3]), ["seal", "otter"], 4)


def test_fewer_than_two_folds_is_refused():
    with pytest.raises(ConfigError, match=r"'diagnose.folds' is 1"):
        parse(DiagnoseConfig, {"folds": 1}, "diagnose")


def test_the_recipe_is_checked_like_the_train_block():
    with pytest.raises(ConfigError, match=r"diagnose.recipe.epoch"):
        parse(DiagnoseConfig, {"recipe": {"epoch": 3}}, "diagnose")
    cfg = parse(DiagnoseConfig, {"recipe": {"epochs": 3, "model_options": {"width": 4}}}, "diagnose")
    assert isinstance(cfg.recipe, TrainConfig) and cfg.recipe.epochs == 3


def test_every_image_is_predicted_by_the_fold_that_did_not_train_on_it_and_folds_resume(tmp_path, monkeypatch):
    data = make_images([24, 16, 12])
    recipe = TrainConfig(model="preact_resnet18", model_options={"width": 4}, epochs=1, batch_size=16,
                         milestones=[], augment="none", progress=False, checkpoint_dir=str(tmp_path))
    args = (data.images, data.labels, data.class_names, [0.5] * 3, [0.25] * 3, recipe, 2, 0)
    fits = []  # (images trained on, images held out, result) of each real fit, in fold order
    real_fit = folds_module.fit

    def recording_fit(*fit_args, **fit_kwargs):
        result = real_fit(*fit_args, **fit_kwargs)
        fits.append((fit_args[0], fit_args[2], result))
        return result

    monkeypatch.setattr(folds_module, "fit", recording_fit)
    seen = []
    first = out_of_fold_probabilities(*args, on_epoch_end=lambda k, row: seen.append((k, row["epoch"])))
    assert first.probabilities.shape == (52, 3)
    assert np.allclose(first.probabilities.sum(1), 1, atol=1e-5)
    assert sorted(set(first.fold)) == [0, 1]
    assert seen == [(0, 1), (1, 1)]
    assert [row["fold"] for row in first.history] == [0, 1]
    assert len(list(tmp_path.glob("*.pt"))) == 2  # one checkpoint a fold: the data differ
    assert len(fits) == 2

    def rows(images):  # the images as a multiset, whatever their order
        return sorted(image.tobytes() for image in images)

    for k, (trained_on, held_out, result) in enumerate(fits):
        in_fold = first.fold == k
        assert rows(held_out) == rows(data.images[in_fold])  # fold k's model is checked on fold k ...
        assert rows(trained_on) == rows(data.images[~in_fold])  # ... and trained on every other image
        network = build_model("preact_resnet18", 3, width=4)
        network.load_state_dict(result.last_state)
        own = predict_proba(network, data.images[in_fold], [0.5] * 3, [0.25] * 3, device=recipe.device)
        np.testing.assert_allclose(first.probabilities[in_fold], own, atol=1e-5)  # rows come from that model
    fits.clear()
    again = out_of_fold_probabilities(*args)  # both folds complete: reused, not retrained
    assert [result.resumed_from for _, _, result in fits] == [1, 1]
    assert np.allclose(again.probabilities, first.probabilities, atol=1e-6)
    assert again.history == first.history
