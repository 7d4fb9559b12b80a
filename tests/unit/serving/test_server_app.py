"""The Classwise server's app (MLflow's scoring app behind request limits), driven in process over ASGI:
every payload the docs list answers row by row; nesting, size and content type are 4xx, never 500."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from classwise.pipelines.predict.nodes import log_mlflow_model
from classwise.serving.logged_model import model_location
from classwise.serving.server import MAX_REQUEST_BYTES, create_app
from tests.conftest import TINY_STATS, make_images, tiny_model


def b64png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


GOOD = b64png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
NOT_BASE64 = "%%% not base64 %%%"
NOT_AN_IMAGE = base64.b64encode(b"%PDF-1.4 a document").decode("ascii")


def post(app, body: bytes, content_type: str | None = "application/json", chunk: int = 1 << 20,
         declare_length: bool = True) -> tuple[int, dict | str]:
    """POST /invocations to an ASGI app, the body in ``chunk``-byte messages; (status, parsed JSON or text)."""
    messages = [{"type": "http.request", "body": body[i:i + chunk], "more_body": i + chunk < len(body)}
                for i in range(0, len(body), chunk)] or [{"type": "http.request", "body": b"", "more_body": False}]
    answer = {"status": None, "body": b""}

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    headers = [(b"content-type", content_type.encode())] if content_type else []
    headers += [(b"content-length", str(len(body)).encode())] if declare_length else []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/invocations", "raw_path": b"/invocations", "root_path": "", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 5001)}
    asyncio.run(app(scope, receive, send))
    text = answer["body"].decode()
    try:
        return answer["status"], json.loads(text)
    except ValueError:
        return answer["status"], text


@pytest.fixture(scope="module")
def app(mlflow_store):
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    with mlflow.start_run():
        log_mlflow_model(tiny_model(), TINY_STATS, {}, data, split, {}, [255, 255, 255])
    return create_app("models:/classwise/1")


def parquet(column: list) -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"image": column}).to_parquet(buffer)
    return buffer.getvalue()


PAYLOADS = {
    "dataframe_split": (json.dumps({"dataframe_split": {"columns": ["image"],
                                                        "data": [[GOOD], [NOT_BASE64], [NOT_AN_IMAGE]]}}),
                        "application/json"),
    "dataframe_records": (json.dumps({"dataframe_records": [{"image": GOOD}, {"image": NOT_BASE64},
                                                            {"image": NOT_AN_IMAGE}]}), "application/json"),
    "inputs": (json.dumps({"inputs": {"image": [GOOD, NOT_BASE64, NOT_AN_IMAGE]}}), "application/json"),
    "instances": (json.dumps({"instances": [{"image": GOOD}, {"image": NOT_BASE64}, {"image": NOT_AN_IMAGE}]}),
                  "application/json"),
    "parquet, base64 text": (parquet([GOOD, NOT_BASE64, NOT_AN_IMAGE]), "application/vnd.apache.parquet"),
    "parquet, bytes": (parquet([base64.b64decode(GOOD), b"", base64.b64decode(NOT_AN_IMAGE)]),
                       "application/vnd.apache.parquet"),
}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_every_documented_payload_answers_each_row_on_its_own(app, name):
    body, content_type = PAYLOADS[name]
    status, answer = post(app, body if isinstance(body, bytes) else body.encode(), content_type)
    assert status == 200, answer
    good, bad_text, not_an_image = answer["predictions"]
    assert good["error"] is None and good["class"].startswith("class ") and len(good["probabilities"]) == 4
    assert bad_text["class"] is None and ("not base64" in bad_text["error"] or "empty" in bad_text["error"])
    assert not_an_image["class"] is None and "not an image" in not_an_image["error"]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["pixels"], "data": [[[[0, 255], [255, 0]]], [[[300, 1]]]]}},
    {"dataframe_records": [{"pixels": [[0, 255], [255, 0]]}, {"pixels": [[300, 1]]}]},
    {"inputs": {"pixels": [[[0, 255], [255, 0]], [[300, 1]]]}},
])
def test_pixel_arrays_are_answered_row_by_row(app, body):
    status, answer = post(app, json.dumps(body).encode())
    assert status == 200, answer
    good, bad = answer["predictions"]
    assert good["error"] is None and good["class"].startswith("class ") and "0-255" in bad["error"]


@pytest.mark.parametrize("body", [
    {"dataframe_records": [{"image": GOOD}, {"pixels": [[0, 255], [255, 0]]}, {"image": 7}]},
    {"dataframe_split": {"columns": ["image", "pixels"],
                         "data": [[GOOD, None], [None, [[0, 255], [255, 0]]], [7, None]]}},
])
def test_images_and_pixel_arrays_mix_in_one_request(app, body):
    status, answer = post(app, json.dumps(body).encode())
    assert status == 200, answer
    errors = [row["error"] for row in answer["predictions"]]
    assert errors[0] is None and errors[1] is None and "holds int data" in errors[2]


@pytest.mark.parametrize("body, expected", [
    (b"[" * 100_000 + b"]" * 100_000, 400),  # past the parser's recursion limit: MLflow alone answers 500
    (b'{"inputs": {"image": ' + b"[" * 5000 + b"]" * 5000 + b"}}", 400),
    (b'{"dataframe_split": {"columns": ["pixels"], "data": [[' + b"[" * 300 + b"]" * 300 + b"]]}}", 200),
])
def test_deeply_nested_json_is_a_400_never_a_500(app, body, expected):
    status, answer = post(app, body)
    assert status == expected, answer
    if status == 200:  # parsed: the row is refused on its own
        assert "not a rectangular array" in answer["predictions"][0]["error"]


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_limit_is_413(app, declare_length):
    body = json.dumps({"inputs": {"image": ["A" * (MAX_REQUEST_BYTES + 10)]}}).encode()
    status, answer = post(app, body, declare_length=declare_length)
    assert status == 413 and "over 32 MiB" in answer["message"]


def test_a_body_just_under_the_limit_is_answered(app):
    padding = "A" * (MAX_REQUEST_BYTES - 200_000)  # one huge row that is not an image; the others answered
    status, answer = post(app, json.dumps({"inputs": {"image": [GOOD, padding]}}).encode())
    assert status == 200 and answer["predictions"][0]["error"] is None
    assert "not an image" in answer["predictions"][1]["error"] or "too large" in answer["predictions"][1]["error"]


@pytest.mark.parametrize("body, content_type, expected", [
    (b"{}", None, 415),
    (b"image\n" + GOOD.encode() + b"\n", "text/csv", 400),  # MLflow's CSV reader cannot type the pixels column
    (b"\xff\xfe", "application/json", 400),
    (b"{not json", "application/json", 400),
    (json.dumps({"dataframe_split": {"columns": ["image"], "data": []}}).encode(), "application/json", 400),
    (b"x", "image/png", 415),
])
def test_malformed_requests_are_4xx(app, body, content_type, expected):
    status, _ = post(app, body, content_type)
    assert status == expected


def test_a_version_logged_with_a_binary_image_column_is_served_row_by_row(app, tmp_path):
    # Versions logged before the image column became base64 text declare it binary; MLflow would decode
    # every row before predict, and one bad item would cost the whole request its answer.
    copy = shutil.copytree(model_location("models:/classwise/1"), tmp_path / "older")
    mlmodel = yaml.safe_load((copy / "MLmodel").read_text())
    mlmodel["signature"]["inputs"] = mlmodel["signature"]["inputs"].replace('"string", "name": "image"',
                                                                            '"binary", "name": "image"')
    assert '"binary"' in mlmodel["signature"]["inputs"]
    (copy / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    body, content_type = PAYLOADS["dataframe_split"]
    status, answer = post(create_app(str(copy)), body.encode(), content_type)
    assert status == 200, answer
    assert [row["error"] is None for row in answer["predictions"]] == [True, False, False]
