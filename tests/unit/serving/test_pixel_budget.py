"""One decode budget for ingest, predict and serving: an image whose decode would take too much memory
is refused from its header, before a pixel is decoded, as a rejected file or as its row's error."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classwise.data.sources.image_folder import (
    MAX_DECODE_BYTES,
    BrokenImage,
    check_decode_budget,
    decode_bytes,
    decode_image,
    load_image_folder,
)
from classwise.serving import predict_path, predictor_from_model
from classwise.serving import pyfunc
from tests.conftest import TINY_STATS, tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
WHITE = (255, 255, 255)


def header_only_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A PNG that declares ``width`` x ``height`` but holds one row: decoding it would fail as truncated,
    so a "too large" answer shows that it was refused from the header alone."""
    color_type, bands = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}[mode]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    one_row = zlib.compress(b"\0" * (1 + width * bands))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", one_row) + chunk(b"IEND", b"")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_12000_square_rgba_png_is_refused_from_its_header():
    started = time.perf_counter()
    with pytest.raises(BrokenImage) as refused:
        decode_image(header_only_png(12000, 12000), 32, WHITE)
    reason = str(refused.value)
    assert reason.startswith("too large (12000x12000 pixels, RGBA: about 3,")  # GiB, not decoded
    assert "truncated" not in reason and time.perf_counter() - started < 1


def test_the_budget_counts_bands_and_the_decode_copies():
    side = 5000  # 25 megapixels: under the budget grey or opaque RGB, over it with transparency or 16 bits
    assert decode_bytes("L", side, side) < decode_bytes("RGB", side, side) < decode_bytes("RGBA", side, side)
    check_decode_budget("L", side, side)
    check_decode_budget("RGB", side, side)
    check_decode_budget("P", side, side)
    for mode, transparency in [("RGBA", False), ("LA", False), ("P", True), ("I;16", False)]:
        with pytest.raises(BrokenImage, match="too large"):
            check_decode_budget(mode, side, side, transparency)


def test_a_jpeg_is_drafted_before_it_is_counted(tmp_path):
    side = 6000  # 36 megapixels of RGB: over the budget in full, far under it drafted to 1/8
    assert decode_bytes("RGB", side, side) > MAX_DECODE_BYTES
    path = tmp_path / "big.jpg"
    Image.new("RGB", (side, side), (200, 30, 30)).save(path, quality=80)
    pixels, resized, _ = decode_image(str(path), 32, WHITE)
    assert pixels.shape == (32, 32, 3) and resized and abs(int(pixels[16, 16, 0]) - 200) < 8
    with pytest.raises(BrokenImage, match="too large"):  # the same size as a PNG cannot be drafted
        decode_image(header_only_png(side, side, "RGB"), 32, WHITE)


@pytest.fixture
def folder_with_a_huge_image(tmp_path) -> Path:
    root = tmp_path / "images"
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        (root / name / "small.png").write_bytes(png(np.full((20, 20, 3), 90, np.uint8)))
    (root / "cats" / "huge.png").write_bytes(header_only_png(12000, 12000))
    return root


def test_ingest_lists_an_image_over_the_budget_as_rejected_with_its_reason(folder_with_a_huge_image):
    result = load_image_folder(folder_with_a_huge_image, 32, WHITE, workers=1, progress=False)
    assert len(result.data) == 2 and result.summary["rejected"] == 1
    (reject,) = [r for r in result.rejects if r["action"] == "rejected"]
    assert reject["path"].endswith("huge.png") and reject["reason"].startswith("too large (12000x12000 pixels")


def test_predict_lists_an_image_over_the_budget_as_rejected_with_its_reason(folder_with_a_huge_image):
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    result = predict_path(predictor, folder_with_a_huge_image, workers=1, progress=False)
    assert sorted(result.table["file"]) == ["cats/small.png", "dogs/small.png"]
    assert result.rejected.set_index("file").loc["cats/huge.png", "reason"].startswith("too large (12000x12000")


def test_serving_gives_an_image_over_the_budget_its_rows_error_and_answers_the_rest():
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    small = np.full((20, 20, 3), 90, np.uint8)
    frame = pd.DataFrame({
        "image": [base64.b64encode(header_only_png(12000, 12000)).decode(), base64.b64encode(png(small)).decode(),
                  None],
        "pixels": [None, None, np.broadcast_to(small[:1, :1], (20000, 20000, 3))],  # a view: nothing allocated
    })
    answer = pyfunc.predict_frame(predictor, frame)
    assert answer.loc[0, "error"].startswith("too large (12000x12000") and answer.loc[0, "class"] is None
    assert answer.loc[1, "error"] is None and answer.loc[1, "class"] in predictor.class_names
    assert answer.loc[2, "error"].startswith("too large (20000x20000 pixels, RGB")


def test_serving_decodes_at_most_two_images_at_once(monkeypatch):
    predictor = predictor_from_model(tiny_model(), TINY_STATS, device="cpu")
    running, most = 0, 0
    lock = threading.Lock()

    def slow_decode(row, size, background):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return np.zeros((size, size, 3), np.uint8)

    monkeypatch.setattr(pyfunc, "decode_item", slow_decode)
    requests = [threading.Thread(target=pyfunc.predict_frame, args=(predictor, pd.DataFrame({"image": ["x"] * 3})))
                for _ in range(6)]
    for request in requests:
        request.start()
    for request in requests:
        request.join()
    assert most == pyfunc.MAX_CONCURRENT_DECODES == 2
