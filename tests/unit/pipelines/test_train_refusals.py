"""A training that ran no optimisation step never replaces the saved model."""

import re

import pytest

from classwise.core.errors import ConfigError
from classwise.core.errors import RunError
from classwise.pipelines.train.nodes import train_model
from classwise.data.split import SplitConfig, split_table
from tests.conftest import make_images

STATS = {"mean": [0.5] * 3, "std": [0.25] * 3}
TINY = {"model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 1, "batch_size": 16,
        "milestones": [], "device": "cpu", "progress": False}


@pytest.fixture
def data_and_split():
    data = make_images([12, 12, 12], size=32)
    return data, split_table(data, SplitConfig(val_per_class=2, test_per_class=2))


@pytest.mark.parametrize("change, sentence", [
    ({"epochs": 0}, "Parameter 'train.epochs' is 0; it must be 1 or more."),
    ({"batch_size": 1}, "Parameter 'train.batch_size' is 1; it must be 2 or more"),
])
def test_parameters_that_cannot_train_are_refused_before_training(data_and_split, change, sentence):
    data, split = data_and_split
    with pytest.raises(ConfigError, match=re.escape(sentence)):
        train_model(data, split, STATS, {**TINY, **change})


def test_training_without_a_step_is_refused(data_and_split):
    # One training image in all (a split edited by hand; split_table keeps one a class): no batch of
    # two, so no optimisation step, whatever the parameters say.
    data, split = data_and_split
    split = split.copy()
    train_rows = split.index[split["subset"] == "train"]
    split.loc[train_rows[1:], "subset"] = "val"
    with pytest.raises(RunError, match="ran no optimisation step .* the saved model was left unchanged"):
        train_model(data, split, STATS, TINY)


def test_the_saved_model_carries_lineage_and_class_names(data_and_split):
    data, split = data_and_split
    model, history, dynamics = train_model(data, split, STATS, TINY)
    config = model["config"]
    assert config["class_names"] == data.class_names and len(history) == 1
    train_ids = set(split.loc[split["subset"] == "train", "id"].astype(str))
    assert set(dynamics["id"]) == train_ids and len(dynamics) == len(train_ids)  # one row a training image
    assert len(config["dataset_fingerprint"]) == 16 and len(config["split_fingerprint"]) == 16
