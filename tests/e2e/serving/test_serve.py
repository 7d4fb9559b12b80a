"""`mlflow models serve` on the registered model, on 127.0.0.1, asked by a real HTTP client."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow
from classwise.pipelines.predict.nodes import log_mlflow_model, predict_new_images
from tests.support.servers import served_model
from tests.conftest import PROJECT_ROOT, NEW_IMAGES_GOOD, TINY_STATS, make_images, tiny_model

START_TIMEOUT_S = 240  # the server imports torch and loads the model; the machine may be busy


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def images_payload(blobs: list[bytes]) -> bytes:
    rows = [[base64.b64encode(b).decode("ascii")] for b in blobs]
    return json.dumps({"dataframe_split": {"columns": ["image"], "data": rows}}).encode()


@pytest.fixture(scope="module")
def server(mlflow_store, tmp_path_factory):
    """The registered model served by a real `mlflow models serve` subprocess; always stopped (served_model)."""
    data = make_images([6, 6, 6, 6])
    split = pd.DataFrame({"id": data.ids, "subset": ["train", "val", "test"] * 8})
    with mlflow.start_run():
        log_mlflow_model(tiny_model(), TINY_STATS, {"val": {"top1": 0.5}}, data, split, {}, [255, 255, 255])
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    try:
        with served_model("models:/classwise/1", mlflow_store, log_path, start_timeout_s=START_TIMEOUT_S) as url:
            yield url
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(str(exc))


def test_served_model_gives_the_predict_pipelines_classes(server, new_images_folder):
    table, _, _ = predict_new_images(
        tiny_model(), {"input": str(new_images_folder), "device": "cpu", "workers": 1, "progress": False},
        {},
    )
    files = sorted(NEW_IMAGES_GOOD)
    status, body = post(f"{server}/invocations", images_payload([(new_images_folder / f).read_bytes() for f in files]))
    assert status == 200, body
    answer = pd.DataFrame(json.loads(body)["predictions"])
    expected = table.set_index("file").loc[files]
    assert answer["class"].tolist() == expected["class_1"].tolist()
    np.testing.assert_allclose(answer["probability"], expected["probability_1"], rtol=1e-5)
    assert all(len(p) == 4 for p in answer["probabilities"])


def test_bad_items_get_a_reason_and_the_rest_of_the_batch_is_answered(server, new_images_folder):
    from PIL import Image

    good = (new_images_folder / "a.png").read_bytes()
    huge = Path(new_images_folder.parent / "huge.png")
    Image.new("L", (8000, 7000)).save(huge)  # 56 million pixels, a small file
    cmyk = new_images_folder.parent / "cmyk.jpg"
    Image.new("CMYK", (50, 40), (10, 200, 30, 0)).save(cmyk)
    status, body = post(f"{server}/invocations",
                        images_payload([good, b"%PDF-1.4 not an image", huge.read_bytes(), cmyk.read_bytes(), good]))
    assert status == 200, body
    rows = json.loads(body)["predictions"]
    assert [row["error"] is None for row in rows] == [True, False, False, True, True]
    assert "not an image" in rows[1]["error"] and "too large" in rows[2]["error"]
    assert rows[0]["class"] == rows[4]["class"] and rows[1]["class"] is None


def test_pixel_arrays_in_json_are_classified_or_refused_per_item(server):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).tolist()
    body = {"dataframe_split": {"columns": ["pixels"], "data": [[rgb], [[[1, 2], [3, 4]]], [[[300, 1], [2, 3]]]]}}
    status, text = post(f"{server}/invocations", json.dumps(body).encode())
    assert status == 200, text
    rows = json.loads(text)["predictions"]
    assert rows[0]["error"] is None and rows[1]["error"] is None  # a 2 x 2 grey image is still an image
    assert "0-255" in rows[2]["error"]


@pytest.mark.parametrize("body, content_type", [
    (b"", "application/json"),
    (b"{not json", "application/json"),
    (json.dumps({"dataframe_split": {"columns": ["image"], "data": []}}).encode(), "application/json"),
    (json.dumps({"dataframe_split": {"columns": ["photo"], "data": [["eA=="]]}}).encode(), "application/json"),
    (b"\x89PNG raw bytes", "image/png"),
])
def test_malformed_requests_get_a_4xx_not_a_500(server, body, content_type):
    status, text = post(f"{server}/invocations", body, content_type)
    assert 400 <= status < 500, (status, text[:500])
    # and the server is still there afterwards
    with urllib.request.urlopen(f"{server}/ping", timeout=10) as response:
        assert response.status == 200


def test_load_benchmark_fires_bounded_requests_at_the_server(server, new_images_folder):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "serve_load", PROJECT_ROOT / "benchmarks" / "serve_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    images = bench.load_images(str(new_images_folder / "a.png"), limit=4)
    result = bench.fire(server, bench.payloads(images, batch=2, count=6), concurrency=3, max_seconds=60)
    assert result["requests_ok"] == 6 and result["requests_failed"] == 0
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    with pytest.raises(SystemExit, match="127.0.0.1"):
        bench.check_loopback("http://example.com:5001")
