"""The MLflow Model: a pyfunc that classifies encoded images (PNG, JPEG, ...) or uint8 pixel arrays.

Input, one row an image: column ``image`` with the encoded file as base64 text (or its bytes, in
process) or column ``pixels`` with an H x W x 3 (or H x W, or H x W x 4) uint8 array. Each row is
decoded here, inside predict, so that one bad row gets its reason and the others their classes:
the signature declares ``image`` a string, which MLflow's scoring server passes through as it came
(a binary column it would base64-decode itself, and one bad item would fail the whole request).
Output, one row an input row: ``class``, ``probability`` (of that class), ``probabilities`` (all
classes, in the order of the model's class names) and ``error``: an image that cannot be used gets
its reason there and no class. A request with no rows or neither column is refused with one
sentence (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import AnyType, Array, ColSpec, DataType, Schema
from PIL import Image

from classwise.data.sources.image_folder import BrokenImage, check_decode_budget, decode_image, prepare_image
from classwise.serving.predictor import Predictor, predictor_from_model

IMAGE_COLUMN = "image"  # an encoded image: base64 text (bytes too, in process)
PIXELS_COLUMN = "pixels"  # uint8 H x W x C arrays
OUTPUT_COLUMNS = ["class", "probability", "probabilities", "error"]
MAX_IMAGE_BYTES = 20 * 2**20  # an encoded image larger than this is refused, per item, before it is decoded
# Decodes at once in one process. MLflow's server answers requests on a pool of threads, and each
# decode may take up to image_folder.MAX_DECODE_BYTES (512 MiB); two bound decoding to about 1 GiB.
MAX_CONCURRENT_DECODES = 2
DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)

SIGNATURE = ModelSignature(
    inputs=Schema([
        # A string, not binary: MLflow base64-decodes a binary column before predict, so one bad item
        # would fail the whole request; as a string each row is decoded, and refused, on its own.
        ColSpec(DataType.string, IMAGE_COLUMN, required=False),
        # Any: a grey H x W array is as welcome as H x W x 3; pixels_to_image checks each one.
        ColSpec(AnyType(), PIXELS_COLUMN, required=False),
    ]),
    outputs=Schema([
        ColSpec(DataType.string, "class", required=False),
        ColSpec(DataType.double, "probability", required=False),
        ColSpec(Array(DataType.double), "probabilities", required=False),
        ColSpec(DataType.string, "error", required=False),
    ]),
)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float) and np.isnan(value)


def pixels_to_image(value: Any, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """A uint8 H x W (grey), H x W x 1, x 3 (RGB) or x 4 (RGBA) array as the network's input image."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise BrokenImage("pixels are not a rectangular array of numbers") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise BrokenImage(f"pixels must be integers 0-255, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise BrokenImage(f"pixels have shape {array.shape}; send H x W x 3 (RGB), H x W x 4 (RGBA) or H x W (grey)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise BrokenImage(f"pixels have shape {array.shape}, an empty image")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    check_decode_budget(mode, array.shape[1], array.shape[0])
    if array.size and (array.min() < 0 or array.max() > 255):
        raise BrokenImage(f"pixel values run from {array.min()} to {array.max()}; send uint8 values 0-255")
    return prepare_image(Image.fromarray(array.astype(np.uint8), mode), size, background)[0]


def encoded_bytes(value: Any) -> bytes:
    """The encoded image of an ``image`` cell: base64 text decoded (strictly), or bytes as they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        encoded = bytes(value)
    elif isinstance(value, str):
        text = "".join(value.split())  # line breaks, as base64 without -w0 writes them
        size = len(text) // 4 * 3
        if size > MAX_IMAGE_BYTES:  # refused before its bytes are made
            raise BrokenImage(f"too large (about {size:,} bytes, over the limit of {MAX_IMAGE_BYTES:,})")
        try:
            encoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BrokenImage("'image' is not base64 text; send the encoded file as base64") from None
    else:
        raise BrokenImage(f"'image' holds {type(value).__name__} data, not text; send the encoded file as base64")
    if len(encoded) > MAX_IMAGE_BYTES:
        raise BrokenImage(f"too large ({len(encoded):,} bytes, over the limit of {MAX_IMAGE_BYTES:,})")
    return encoded


def decode_item(row: pd.Series, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """The image of one request row; BrokenImage with the reason when it cannot be used."""
    encoded = row.get(IMAGE_COLUMN)
    if not _missing(encoded):
        return decode_image(encoded_bytes(encoded), size, background)[0]
    pixels = row.get(PIXELS_COLUMN)
    if not _missing(pixels):
        return pixels_to_image(pixels, size, background)
    raise BrokenImage("the row has neither 'image' (base64 of an encoded image) nor 'pixels' (a uint8 array)")


def predict_frame(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """One output row a request row: class, probability, probabilities, error (see the module doc)."""
    if not isinstance(frame, pd.DataFrame) or not ({IMAGE_COLUMN, PIXELS_COLUMN} & set(frame.columns)):
        raise MlflowException(
            f"The request needs a column '{IMAGE_COLUMN}' (base64 of an encoded image) or "
            f"'{PIXELS_COLUMN}' (uint8 arrays), one row an image.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if len(frame) == 0:
        raise MlflowException("The request holds no images; send one row an image.",
                              error_code=INVALID_PARAMETER_VALUE)
    images = np.zeros((len(frame), predictor.image_size, predictor.image_size, 3), dtype=np.uint8)
    errors: dict[int, str] = {}
    for position, (_, row) in enumerate(frame.iterrows()):
        try:
            with DECODE_SLOTS:
                images[position] = decode_item(row, predictor.image_size, predictor.background)
        except BrokenImage as exc:
            errors[position] = str(exc)
        except Exception as exc:  # one odd item must never cost the rest of the batch its answer
            errors[position] = f"cannot decode ({type(exc).__name__}: {exc})"
    good = [p for p in range(len(frame)) if p not in errors]
    probabilities = predictor.probabilities(images[good]) if good else np.zeros((0, len(predictor.class_names)))
    rows: list[dict[str, Any]] = [{"class": None, "probability": None, "probabilities": None, "error": reason}
                                  for reason in (errors.get(p) for p in range(len(frame)))]
    for position, probs in zip(good, probabilities):
        best = int(probs.argmax())
        rows[position] = {"class": predictor.class_names[best], "probability": float(probs[best]),
                          "probabilities": [float(v) for v in probs], "error": None}
    frame = pd.DataFrame(rows, columns=OUTPUT_COLUMNS).astype(object)
    return frame.where(frame.notna(), None)  # None, not NaN: JSON answers carry null, never the invalid NaN


class ClasswiseModel(mlflow.pyfunc.PythonModel):
    """The network, its class names, normalisation and input size, behind MLflow's pyfunc interface."""

    def load_context(self, context) -> None:
        with open(context.artifacts["meta"], encoding="utf-8") as f:
            meta = json.load(f)
        model = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.predictor = predictor_from_model(
            model, meta, image_size=meta["image_size"], background=meta["background"],
            class_names=meta["class_names"],
        )

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return predict_frame(self.predictor, model_input)
