"""`python -m classwise.serving.server` (what `make serve` runs) on 127.0.0.1, asked by real HTTP clients:
the payloads the docs list, one bad row among good ones, bodies too large or too deep, a hostile model."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import urllib.request
from urllib.parse import urlparse

import mlflow
import pandas as pd
import pytest

from classwise.pipelines.predict.nodes import log_mlflow_model, predict_new_images
from classwise.serving.server import MAX_REQUEST_BYTES
from tests.conftest import NEW_IMAGES_GOOD, TINY_STATS, make_images, tiny_model
from tests.support.servers import served_model
from tests.support.hostile_model import save_hostile_model

START_TIMEOUT_S = 240  # the server imports torch and reads the model; the machine may be busy


def post(url: str, body: bytes, content_type: str | None = "application/json") -> tuple[int, str]:
    """POST with http.client, so that a request may go without a Content-Type at all."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("POST", parts.path, body=body,
                           headers={"Content-Type": content_type} if content_type else {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def alive(server: str) -> bool:
    with urllib.request.urlopen(f"{server}/ping", timeout=10) as response:
        return response.status == 200


@pytest.fixture(scope="module")
def server(mlflow_store, tmp_path_factory):
    """Version 1 of 'classwise' served by the Classwise server in a subprocess; always stopped."""
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    with mlflow.start_run():
        log_mlflow_model(tiny_model(), TINY_STATS, {}, data, split, {}, [255, 255, 255])
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    try:
        with served_model("models:/classwise/1", mlflow_store, log_path, start_timeout_s=START_TIMEOUT_S,
                          server="classwise") as url:
            yield url
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(str(exc))


def payloads(images: list[str]) -> dict[str, dict]:
    """The JSON shapes docs/predict_and_serve.md lists, each holding ``images`` (base64 text) in order."""
    return {
        "dataframe_split": {"dataframe_split": {"columns": ["image"], "data": [[i] for i in images]}},
        "dataframe_records": {"dataframe_records": [{"image": i} for i in images]},
        "inputs": {"inputs": {"image": images}},
        "instances": {"instances": [{"image": i} for i in images]},
    }


def test_every_payload_shape_answers_good_rows_as_predict_does_beside_a_bad_one(server, new_images_folder):
    table, _, _ = predict_new_images(tiny_model(), {"input": str(new_images_folder), "device": "cpu", "workers": 1,
                                                   "progress": False}, {})
    files = sorted(NEW_IMAGES_GOOD)
    images = [base64.b64encode((new_images_folder / f).read_bytes()).decode() for f in files]
    images.insert(2, base64.b64encode(b"GIF89a, then nothing").decode())
    expected = table.set_index("file").loc[files, "class_1"].tolist()
    for shape, body in payloads(images).items():
        status, text = post(f"{server}/invocations", json.dumps(body).encode())
        assert status == 200, (shape, text[:500])
        rows = json.loads(text)["predictions"]
        assert "not an image" in rows[2]["error"] and rows[2]["class"] is None, shape
        assert [r["class"] for r in rows[:2] + rows[3:]] == expected, shape


def test_a_body_over_the_limit_is_413_and_the_server_stays_up(server):
    body = json.dumps({"inputs": {"image": ["A" * (MAX_REQUEST_BYTES + 1000)]}}).encode()
    status, text = post(f"{server}/invocations", body)
    assert status == 413 and "over 32 MiB" in text
    assert alive(server)


@pytest.mark.parametrize("body, content_type, expected", [
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    (b'{"inputs": {"image": []}}', None, 415),
])
def test_deep_nesting_and_a_missing_content_type_are_4xx_not_500(server, body, content_type, expected):
    status, text = post(f"{server}/invocations", body, content_type)
    assert status == expected, text[:500]
    assert alive(server)


def test_the_server_refuses_a_hostile_model_in_one_sentence_without_running_it(tmp_path):
    model, marker = save_hostile_model(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "classwise.serving.server", "-m", str(model), "-p", "1"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Cannot use '") and "not by Classwise's model code" in last
    assert "Traceback" not in result.stderr and not marker.exists()
