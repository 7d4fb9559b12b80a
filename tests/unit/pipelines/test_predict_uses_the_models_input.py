"""Predict feeds a model the input it was trained on (its own image size and normalisation), whatever
today's parameters say; a model that does not record them is refused in one sentence."""

import numpy as np
import pandas as pd
import pytest

from classwise.core.errors import ModelError
from classwise.data.split import SplitConfig, split_table
from classwise.pipelines.predict.nodes import predict_new_images
from classwise.pipelines.train.nodes import train_model
from classwise.serving import predict_path, predictor_from_model
from tests.conftest import make_images, tiny_model

PREDICT = {"device": "cpu", "workers": 1, "progress": False}
OTHER_STATS = {"mean": [0.1, 0.1, 0.1], "std": [0.9, 0.9, 0.9]}  # another dataset's


def test_the_train_node_saves_the_image_size_and_normalisation_it_trained_with():
    data = make_images([12, 12, 12], size=24)
    stats = {"mean": [0.3, 0.4, 0.5], "std": [0.2, 0.25, 0.3]}
    model, _, _ = train_model(data, split_table(data, SplitConfig(val_per_class=2, test_per_class=2)), stats,
                           {"model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 1, "batch_size": 16,
                            "milestones": [], "device": "cpu", "progress": False})
    assert model["config"]["image_size"] == 24 and model["config"]["normalization"] == stats


def test_todays_image_size_does_not_change_the_answers(new_images_folder):
    params = {**PREDICT, "input": str(new_images_folder)}
    as_trained, _, _ = predict_new_images(tiny_model(), params, {})
    asked_for_64, _, _ = predict_new_images(tiny_model(), params, {"image_size": 64})
    pd.testing.assert_frame_equal(asked_for_64, as_trained)


def test_images_are_normalised_with_the_models_own_statistics(new_images_folder):
    model = tiny_model()
    model["config"]["normalization"] = OTHER_STATS
    table, _, _ = predict_new_images(model, {**PREDICT, "input": str(new_images_folder)}, {})
    own = predict_path(predictor_from_model(model, OTHER_STATS, 32, device="cpu"), new_images_folder, workers=1,
                       progress=False)
    np.testing.assert_allclose(table["probability_1"], own.table["probability_1"], rtol=1e-6)
    assert not np.allclose(table["probability_1"], predict_new_images(
        tiny_model(), {**PREDICT, "input": str(new_images_folder)}, {})[0]["probability_1"])


@pytest.mark.parametrize("missing", ["image_size", "normalization"])
def test_a_model_that_does_not_record_its_input_is_refused_in_one_sentence(new_images_folder, missing):
    model = tiny_model()
    del model["config"][missing]
    with pytest.raises(ModelError) as refused:
        predict_new_images(model, {**PREDICT, "input": str(new_images_folder)}, {})
    text = str(refused.value)
    assert "\n" not in text and "does not record the image size and normalisation" in text
    assert "kedro run --pipelines=train" in text
