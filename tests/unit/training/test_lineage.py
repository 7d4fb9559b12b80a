"""A saved model carries what it was trained on; evaluate refuses other data with one sentence."""

import logging

import pytest

from classwise.core.errors import ModelError
from classwise.training.lineage import check_class_names, check_lineage, lineage
from classwise.models import build_model
from classwise.pipelines.evaluate.nodes import predict
from classwise.data.split import SplitConfig, split_table
from tests.conftest import make_images

STATS = {"mean": [0.5] * 3, "std": [0.25] * 3}
EVALUATE = {"subsets": ["val", "test"], "correlation_subset": "val", "confusion_subset": "test", "device": "cpu"}


def _model(data, split):
    net = build_model("preact_resnet18", data.num_classes, width=4)
    config = {"name": "preact_resnet18", "num_classes": data.num_classes, "options": {"width": 4}}
    return {"config": {**config, **lineage(data, split)}, "state_dict": net.state_dict()}


@pytest.fixture
def trained():
    data = make_images([20, 20, 20, 20], size=32)
    split = split_table(data, SplitConfig(val_per_class=3, test_per_class=3, seed=0))
    return data, split, _model(data, split)


def test_evaluate_runs_on_the_data_and_split_the_model_was_trained_on(trained):
    data, split, model = trained
    predictions = predict(model, data, split, STATS, EVALUATE)
    assert sorted(predictions["subset"].unique()) == ["test", "val"]


def test_evaluate_after_a_resplit_refuses(trained):
    data, _, model = trained
    resplit = split_table(data, SplitConfig(val_per_class=3, test_per_class=3, seed=1))
    with pytest.raises(ModelError, match="trained on another split .* rerun training") as info:
        predict(model, data, resplit, STATS, EVALUATE)
    assert "\n" not in str(info.value)


def test_evaluate_on_changed_images_refuses(trained):
    data, split, model = trained
    data.images[0, 0, 0, 0] ^= 1  # one bit of one pixel
    with pytest.raises(ModelError, match="trained on another dataset"):
        predict(model, data, split, STATS, EVALUATE)


def test_evaluate_on_a_dataset_with_other_classes_refuses(trained):
    _, _, model = trained
    bigger = make_images([20] * 6, size=32)
    split = split_table(bigger, SplitConfig(val_per_class=3, test_per_class=3))
    with pytest.raises(ModelError, match=r"trained on 4 classes but the data has 6 \(new classes 'class 4', 'class 5'\)"):
        predict(model, bigger, split, STATS, EVALUATE)


def test_class_names_are_checked_in_order():
    with pytest.raises(ModelError, match="same classes in another order"):
        check_class_names({"class_names": ["a", "b"]}, ["b", "a"])
    with pytest.raises(ModelError, match="predicts 3 classes but the data has 2"):
        check_class_names({"num_classes": 3}, ["a", "b"])
    check_class_names({"class_names": ["a", "b"]}, ["a", "b"])


def test_a_model_saved_without_fingerprints_is_used_with_a_warning(trained, caplog):
    data, split, model = trained
    for key in ("dataset_fingerprint", "split_fingerprint"):
        del model["config"][key]
    with caplog.at_level(logging.WARNING, logger="classwise.training.lineage"):
        check_lineage(model["config"], data, split)
    assert "carries no dataset or split fingerprint" in caplog.text


def test_split_fingerprint_ignores_row_order(trained):
    data, split, _ = trained
    assert lineage(data, split) == lineage(data, split.sample(frac=1, random_state=0))
