"""predict.model_uri never runs code from the model: a stranger's pyfunc is refused before it is unpickled,
a Classwise-shaped one is read as data, and a URI that leads nowhere is one sentence."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from classwise.core.errors import ModelError
from classwise.pipelines.predict.nodes import log_mlflow_model, predict_new_images
from classwise.serving.logged_model import load_logged_predictor, model_location
from tests.conftest import TINY_STATS, make_images, tiny_model
from tests.support.hostile_model import HostileModel, save_hostile_model

PREDICT = {"device": "cpu", "workers": 1, "progress": False}


def one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".") and "Traceback" not in text
    return text


@pytest.fixture(scope="module")
def registry(mlflow_store, tmp_path_factory):
    """Version 1 of 'classwise' as training logs it, and version 1 of 'evil', a hostile pickled pyfunc."""
    root = tmp_path_factory.mktemp("models")
    marker = root / "evil-ran"
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    with mlflow.start_run():
        log_mlflow_model(tiny_model(), TINY_STATS, {}, data, split, {}, [255, 255, 255])
        # pip requirements given: MLflow would infer them by loading the model, which runs it
        mlflow.pyfunc.log_model(name="evil", python_model=HostileModel(marker), registered_model_name="evil",
                                pip_requirements=["mlflow"])
    assert not marker.exists()
    return {"root": root, "marker": marker}


@pytest.fixture
def hostile_dir(tmp_path) -> tuple[Path, Path]:
    """A hostile pyfunc saved to a folder, as passed with predict.model_uri=<path>; and its marker."""
    return save_hostile_model(tmp_path)


def test_a_hostile_model_folder_is_refused_before_it_runs(registry, hostile_dir, new_images_folder):
    path, marker = hostile_dir
    with pytest.raises(ModelError) as refused:
        predict_new_images(tiny_model(), {**PREDICT, "input": str(new_images_folder), "model_uri": str(path)}, {})
    text = one_sentence(refused.value)
    assert str(path) in text and "not by Classwise's model code" in text and "predict.model_uri" in text
    assert not marker.exists()
    # The folder is hostile indeed: MLflow's own loader runs its command (then fails on what it returned).
    with contextlib.suppress(Exception):
        mlflow.pyfunc.load_model(str(path))
    assert marker.exists()


def test_a_hostile_registered_version_is_refused_before_it_runs(registry, new_images_folder):
    with pytest.raises(ModelError, match="'models:/evil/1'"):
        predict_new_images(tiny_model(), {**PREDICT, "input": str(new_images_folder), "model_uri": "models:/evil/1"},
                           {})
    assert not registry["marker"].exists()


@pytest.mark.parametrize("uri, cause", [
    ("models:/nope/1", "Registered Model with name=nope not found"),
    ("models:/classwise/7", "version=7"),
    ("models:/classwise@champion", "alias champion not found"),
    ("no/such/folder", "No such file or directory"),
])
def test_a_model_uri_that_leads_nowhere_is_one_sentence(registry, new_images_folder, uri, cause):
    with pytest.raises(ModelError) as refused:
        predict_new_images(tiny_model(), {**PREDICT, "input": str(new_images_folder), "model_uri": uri}, {})
    text = one_sentence(refused.value)
    assert f"'{uri}'" in text and cause in text and "set it to null" in text


def test_the_registered_classwise_model_is_read_as_data_and_its_own_code_never_runs(registry, tmp_path):
    location = Path(model_location("models:/classwise/latest"))
    assert (location / "MLmodel").is_file()  # resolved through the registry to its files, nothing loaded
    copy = shutil.copytree(location, tmp_path / "copy")
    marker = tmp_path / "code-ran"
    # The same shape as a Classwise model, but its code does something else: it must not matter.
    (copy / "model_code.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (copy / "code" / "classwise" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    predictor, metadata = load_logged_predictor(str(copy))
    assert not marker.exists()
    assert predictor.class_names == [f"class {c}" for c in range(4)] and predictor.image_size == 32
    assert predictor.mean == TINY_STATS["mean"] and metadata.signature.inputs.input_names() == ["image", "pixels"]


def test_damaged_weights_are_refused_in_one_sentence(registry, tmp_path):
    copy = shutil.copytree(model_location("models:/classwise/1"), tmp_path / "copy")
    (copy / "artifacts" / "model.pt").write_bytes(b"not a weights file")
    with pytest.raises(ModelError) as refused:
        load_logged_predictor(str(copy))
    assert str(copy) in one_sentence(refused.value)
