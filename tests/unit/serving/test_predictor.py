"""The Predictor: saved model -> network, batched probabilities, top-k table, a folder of new images."""

import numpy as np
import pytest
import torch

from classwise.core.errors import ConfigError
from classwise.serving import PredictConfig, network_from_model, predict_path, predictor_from_model, top_k_table
from classwise.data.sources.image_folder import decode_image
from classwise.training import predict_proba
from tests.conftest import NEW_IMAGES_GOOD, NEW_IMAGES_REJECTED, TINY_STATS, tiny_model


def test_network_from_model_ignores_extra_config_keys_and_passes_a_module_through():
    model = tiny_model()
    network = network_from_model(model)
    assert not network.training
    for key, value in model["state_dict"].items():
        assert torch.equal(network.state_dict()[key], value)
    assert network_from_model(network) is network


def test_batched_probabilities_match_one_pass(small_images):
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu", batch_size=7)
    probs = predictor.probabilities(small_images.images[:20])
    whole = predict_proba(network_from_model(tiny_model()), small_images.images[:20], TINY_STATS["mean"],
                          TINY_STATS["std"], device="cpu")
    np.testing.assert_allclose(probs, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_top_k_table_lists_classes_most_probable_first_and_clips_k():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], dtype=np.float32)
    table = top_k_table(["x.png", "y.png"], probs, ["cat", "dog", "owl"], k=5)
    assert list(table.columns) == ["file", "class_1", "probability_1", "class_2", "probability_2",
                                   "class_3", "probability_3"]
    assert table["class_1"].tolist() == ["dog", "cat"] and table["class_2"].tolist() == ["owl", "owl"]
    assert table["probability_1"].tolist() == pytest.approx([0.6, 0.5])
    assert len(top_k_table([], np.zeros((0, 3)), ["cat", "dog", "owl"], 2)) == 0


def test_predict_path_on_a_folder_predicts_good_images_and_lists_broken_and_odd_files(new_images_folder):
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    result = predict_path(predictor, new_images_folder, top_k=2, workers=1, progress=False)
    assert sorted(result.table["file"]) == sorted(NEW_IMAGES_GOOD)
    assert list(result.table.columns) == ["file", "class_1", "probability_1", "class_2", "probability_2"]
    assert set(result.table["class_1"]) <= set(predictor.class_names)
    reasons = dict(zip(result.rejected["file"], result.rejected["reason"]))
    assert set(reasons) == set(NEW_IMAGES_REJECTED)
    for file, words in NEW_IMAGES_REJECTED.items():
        assert words in reasons[file], (file, reasons[file])
    # The images are those the image_folder source would decode, in the table's order.
    for row, file in enumerate(result.table["file"]):
        expected, _, _ = decode_image(str(new_images_folder / file), 32, (255, 255, 255))
        np.testing.assert_array_equal(result.images[row], expected)
    assert result.images[result.table["file"].tolist().index("rotated.jpg")].shape == (32, 32, 3)


def test_predict_path_on_one_file_and_on_a_missing_path(new_images_folder):
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    one = predict_path(predictor, new_images_folder / "b.jpg", workers=1, progress=False)
    assert one.table["file"].tolist() == ["b.jpg"] and one.rejected.empty
    broken = predict_path(predictor, new_images_folder / "fake.png", workers=1, progress=False)
    assert broken.table.empty and broken.rejected["file"].tolist() == ["fake.png"]
    with pytest.raises(ConfigError, match="predict.input"):
        predict_path(predictor, new_images_folder / "nope", progress=False)


def test_a_model_without_class_names_is_refused_in_one_sentence():
    model = tiny_model()
    del model["config"]["class_names"]
    with pytest.raises(ConfigError, match="no class names"):
        predictor_from_model(model, TINY_STATS)


@pytest.mark.parametrize("key, value", [("top_k", 0), ("batch_size", 0), ("contact_sheet_images", -1),
                                        ("workers", 0), ("model_uri", " ")])
def test_predict_config_refuses_bad_values(key, value):
    from classwise.core.config import parse

    with pytest.raises(ConfigError, match=f"predict.{key}"):
        parse(PredictConfig, {key: value}, "predict")
