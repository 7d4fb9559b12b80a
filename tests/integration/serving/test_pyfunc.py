"""The logged MLflow Model: registered with tags, loaded by mlflow.pyfunc, agreeing with the predict pipeline."""

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from PIL import Image

import mlflow
from classwise.pipelines.predict.nodes import log_mlflow_model, predict_new_images
from classwise.serving.predictor import predictor_from_model
from classwise.serving.pyfunc import MAX_IMAGE_BYTES, predict_frame
from classwise.serving.register import png_bytes
from tests.conftest import NEW_IMAGES_GOOD, TINY_STATS, make_images, tiny_model

WHITE = [255, 255, 255]  # data.image_folder.background
PREDICT = {"device": "cpu", "workers": 1, "progress": False, "top_k": 3}


@pytest.fixture(scope="module")
def registered(mlflow_store):
    """Version 1 of 'classwise', logged as the train pipeline's last node does it."""
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    metrics = {"val": {"top1": 0.5, "n_images": 8}, "test": {"top1": 0.25, "macro_f1": 0.2, "n_images": 8}}
    with mlflow.start_run():
        info = log_mlflow_model(tiny_model(), TINY_STATS, metrics, data, split, {}, WHITE)
    return info


def test_training_run_registers_a_version_with_headline_metrics_as_tags(registered):
    assert registered["logged"] and registered["registered_model_uri"] == "models:/classwise/1"
    version = mlflow.MlflowClient().get_model_version("classwise", "1")
    assert version.tags["val.top1"] == "0.5" and version.tags["test.macro_f1"] == "0.2"
    assert "val.n_images" not in version.tags
    model = mlflow.models.get_model_info("models:/classwise/1")
    assert model.signature.inputs.input_names() == ["image", "pixels"]
    assert (model.saved_input_example_info or {}).get("type") == "dataframe"


def test_log_model_can_be_switched_off_and_needs_an_active_run(registered):
    data = make_images([3, 3])
    split = pd.DataFrame({"id": data.ids, "subset": "val"})
    assert log_mlflow_model(tiny_model(2), TINY_STATS, {}, data, split, {"log_model": False}, WHITE)["logged"] is False
    assert log_mlflow_model(tiny_model(2), TINY_STATS, {}, data, split, {}, WHITE)["logged"] is False
    with pytest.raises(MlflowException):  # nothing registered after version 1
        mlflow.MlflowClient().get_model_version("classwise", "2")


def test_loaded_pyfunc_agrees_with_the_predict_pipeline(registered, new_images_folder):
    table, rejected, _ = predict_new_images(tiny_model(), {**PREDICT, "input": str(new_images_folder)}, {})
    loaded = mlflow.pyfunc.load_model("models:/classwise/1")
    files = sorted(NEW_IMAGES_GOOD)
    answer = loaded.predict(pd.DataFrame({"image": [(new_images_folder / f).read_bytes() for f in files]}))
    expected = table.set_index("file").loc[files]
    assert answer["error"].isna().all()
    assert answer["class"].tolist() == expected["class_1"].tolist()
    np.testing.assert_allclose(answer["probability"].astype(float), expected["probability_1"], rtol=1e-5)
    # predict.model_uri: the same predictions through the registered model.
    via_registry, _, _ = predict_new_images(
        None, {**PREDICT, "input": str(new_images_folder), "model_uri": "models:/classwise/latest"}, {}
    )
    pd.testing.assert_frame_equal(via_registry.drop(columns="model"), table.drop(columns="model"))
    assert via_registry["model"].str.startswith("models:/classwise/latest (run ").all()  # it names its model
    assert table["model"].str.startswith("data/06_models/model.pt, preact_resnet18").all()


def test_pyfunc_answers_every_row_and_puts_reasons_on_bad_ones(registered):
    loaded = mlflow.pyfunc.load_model("models:/classwise/1")
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    frame = pd.DataFrame({"image": [png_bytes(rgb), b"GIF89a garbage", b"", None, None, None],
                          "pixels": [None, None, None, rgb, rgb[:, :, 0], np.zeros((4, 4, 5), np.uint8)]})
    answer = loaded.predict(frame)
    assert len(answer) == 6
    good = answer["error"].isna()
    assert good.tolist() == [True, False, False, True, True, False]
    assert answer.loc[0, "class"] == answer.loc[3, "class"]  # PNG bytes and raw pixels of one image agree
    assert answer.loc[0, "probability"] == pytest.approx(answer.loc[3, "probability"], rel=1e-6)
    assert "not an image" in answer.loc[1, "error"] and "empty" in answer.loc[2, "error"]
    assert "shape (4, 4, 5)" in answer.loc[5, "error"]
    assert answer.loc[~good, "class"].isna().all()


def test_oversized_and_empty_requests():
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    huge = Image.new("L", (8000, 7000))  # 56 million pixels: refused before decoding
    buffer = __import__("io").BytesIO()
    huge.save(buffer, format="PNG")
    answer = predict_frame(predictor, pd.DataFrame({"image": [buffer.getvalue(), b"x" * (MAX_IMAGE_BYTES + 1)]}))
    assert "too large (8000x7000 pixels" in answer.loc[0, "error"]
    assert "too large" in answer.loc[1, "error"] and "bytes" in answer.loc[1, "error"]
    with pytest.raises(MlflowException, match="no images"):
        predict_frame(predictor, pd.DataFrame({"image": []}))
    with pytest.raises(MlflowException, match="needs a column 'image'"):
        predict_frame(predictor, pd.DataFrame({"photo": [b"x"]}))


def test_an_unchanged_model_is_not_registered_again_and_a_changed_one_is(mlflow_store):
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    metrics = {"val": {"top1": 0.5, "top5": 1.0, "balanced_accuracy": 0.5, "n_images": 8},
               "test": {"top1": 0.25, "macro_f1": 0.2, "head_top1": 0.3}}
    params = {"registered_model_name": "unchanged"}
    runs = []
    for seed in (0, 0, 1):  # the same weights twice (a rerun), then others
        model = tiny_model(seed=seed)
        model["config"]["trained_at"] = f"2026-12-0{len(runs) + 1}T10:00:00+00:00"  # when it was trained differs
        with mlflow.start_run():
            runs.append(log_mlflow_model(model, TINY_STATS, metrics, data, split, params, WHITE))
    assert [r["version"] for r in runs] == [1, 1, 2]
    assert [r["newly_registered"] for r in runs] == [True, False, True]
    assert runs[1]["registered_model_uri"] == "models:/unchanged/1"  # the rerun points at the version it matches
    assert runs[0]["model_fingerprint"] == runs[1]["model_fingerprint"] != runs[2]["model_fingerprint"]
    client = mlflow.MlflowClient()
    assert len(client.search_model_versions("name = 'unchanged'")) == 2
    tags = client.get_model_version("unchanged", "1").tags
    # Headline numbers of the held-out subsets and the lineage (tiny_model has no data fingerprints); nothing else.
    assert set(tags) == {"val.top1", "val.top5", "test.top1", "test.macro_f1", "model_fingerprint", "network",
                         "trained_at"}
    assert tags["model_fingerprint"] == runs[0]["model_fingerprint"] and tags["network"] == "preact_resnet18"
