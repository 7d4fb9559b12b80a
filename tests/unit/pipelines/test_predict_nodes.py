"""The predict pipeline's node on a folder of good, broken and odd files; its boundaries."""

import matplotlib.pyplot as plt
import pytest

from classwise.core.errors import ConfigError
from classwise.pipeline_registry import register_pipelines
from classwise.pipelines.predict.nodes import headline_tags, predict_new_images
from classwise.training.lineage import model_fingerprint
from tests.conftest import NEW_IMAGES_GOOD, NEW_IMAGES_REJECTED, tiny_model

PREDICT = {"device": "cpu", "workers": 1, "progress": False}


def test_predict_node_writes_rows_rejects_and_a_contact_sheet(new_images_folder):
    table, rejected, figure = predict_new_images(
        tiny_model(), {**PREDICT, "input": str(new_images_folder), "contact_sheet_images": 3}, {}
    )
    assert sorted(table["file"]) == sorted(NEW_IMAGES_GOOD)
    assert [c for c in table.columns if c.startswith("class_")] == ["class_1", "class_2", "class_3", "class_4"]
    assert (table["probability_1"] >= table["probability_2"]).all()
    assert list(rejected.columns) == ["file", "reason"] and set(rejected["file"]) == set(NEW_IMAGES_REJECTED)
    assert isinstance(figure, plt.Figure)
    assert len([ax for ax in figure.axes if ax.images]) == 3
    assert "first 3 of 5" in figure._suptitle.get_text()
    plt.close(figure)


def test_predict_node_without_an_input_says_how_to_set_it():
    with pytest.raises(ConfigError, match="predict.input"):
        predict_new_images(tiny_model(), PREDICT, {})


def test_predict_pipeline_reads_the_saved_model_and_writes_three_outputs():
    pipeline = register_pipelines()["predict"]
    # Input size and normalisation: the model's; the last training's MLflow Model only to name its version.
    assert pipeline.inputs() == {"model", "params:predict", "params:data", "saved_mlflow_model_info"}
    assert pipeline.outputs() == {"new_predictions", "new_predictions_rejected", "new_predictions_plot"}


def test_headline_tags_flatten_metrics_without_counts():
    tags = headline_tags({"val": {"top1": 0.97, "n_images": 100, "balanced_accuracy": 0.9},
                          "test": {"macro_f1": 0.123456789, "tail_top1": 0.5}, "train": {"top1": 1.0},
                          "groups": {"tail": {"classes": 3, "train_count_min": 1}}})
    # The held-out headline numbers only; the rest stays in the run's metrics.
    assert tags == {"val.top1": 0.97, "test.macro_f1": 0.123457}


def test_predict_names_the_model_in_the_table_and_on_the_contact_sheet(new_images_folder):
    model = tiny_model()
    model["config"]["trained_at"] = "2026-12-01T10:00:00+00:00"
    params = {**PREDICT, "input": str(new_images_folder)}
    fingerprint = model_fingerprint(model)
    info = {"registered_model_uri": "models:/classwise/7", "model_fingerprint": fingerprint}
    table, _, figure = predict_new_images(model, params, {}, info)
    (which,) = set(table["model"])
    assert which.startswith("data/06_models/model.pt, preact_resnet18") and "trained 2026-12-01T10:00:00" in which
    assert f"fingerprint {fingerprint}" in which and "registered as models:/classwise/7" in which
    assert "models:/classwise/7" in figure._suptitle.get_text()
    plt.close(figure)
    # The last registered model holds other weights: no version is claimed for this one.
    other, _, figure = predict_new_images(model, params, {}, {**info, "model_fingerprint": "0" * 16})
    assert "registered" not in set(other["model"]).pop()
    plt.close(figure)
