"""Predict on a folder without a usable image refuses in one sentence and keeps the last predictions."""

from __future__ import annotations

from pathlib import Path

import pytest

from classwise.core.errors import DataError
from classwise.framework.datasets import TorchModelDataset
from classwise.pipelines.predict.nodes import predict_new_images
from tests.conftest import tiny_model
from tests.support.sessions import run_session

PREDICT = {"device": "cpu", "workers": 1, "progress": False}


@pytest.fixture
def nothing_usable(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n, then nothing")
    (folder / "sub" / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_folder_without_a_usable_image_is_refused_in_one_sentence(nothing_usable):
    with pytest.raises(DataError) as refused:
        predict_new_images(tiny_model(), {**PREDICT, "input": str(nothing_usable)}, {})
    text = str(refused.value)
    assert "\n" not in text and f"'{nothing_usable}'" in text and "none of its 3 files is a usable image" in text
    assert "broken.png: " in text and "sub/empty.jpg: empty file" in text


def test_an_empty_folder_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(DataError, match="it holds no files"):
        predict_new_images(tiny_model(), {**PREDICT, "input": str(tmp_path)}, {})


def test_the_previous_predictions_stay_as_they_were(project_copy, nothing_usable):
    # No MLflow run for this one pipeline (seconds saved): what is pinned is that Kedro saves no output.
    no_tracking = "tracking: {disable_tracking: {pipelines: [predict]}}\n"
    (project_copy / "conf" / "local" / "mlflow.yml").write_text(no_tracking)
    TorchModelDataset(str(project_copy / "data" / "06_models" / "model.pt")).save(tiny_model())
    previous = project_copy / "data" / "07_model_output" / "new_predictions.csv"
    previous.parent.mkdir(parents=True)
    previous.write_text("file,class_1,probability_1\nyesterday.png,class 2,0.9\n")
    before = previous.read_bytes()
    with pytest.raises(DataError, match="Nothing to predict"):
        run_session(project_copy, pipeline="predict",
                    runtime_params={"predict": {**PREDICT, "input": str(nothing_usable)}})
    assert previous.read_bytes() == before
    assert not (project_copy / "data" / "07_model_output" / "new_predictions_rejected.csv").exists()
