"""``python -m classwise.serving.server -m models:/classwise/3``: MLflow's scoring server for a Classwise
model, with the model read as data and the requests bounded.

The same app as ``mlflow models serve`` (``/invocations``, ``/ping``, the same payloads and answers),
except that: the model is loaded by logged_model (none of its files is run, where MLflow imports
whatever the model directory holds); a body over MAX_REQUEST_BYTES gets 413 without being kept
(MLflow keeps any body whole); JSON nested past Python's recursion limit gets 400, and a request
without a Content-Type 415 (MLflow's app answers both with 500). The tracking store is the one
MLFLOW_TRACKING_URI names, as for ``mlflow models serve``.
"""

from __future__ import annotations

import argparse
import os
import sys

from mlflow.pyfunc import PyFuncModel, scoring_server
from starlette.requests import Request
from starlette.responses import JSONResponse

from classwise.core.errors import ClasswiseError
from classwise.serving.logged_model import load_logged_predictor
from classwise.serving.predictor import Predictor
from classwise.serving.pyfunc import MAX_IMAGE_BYTES, SIGNATURE, predict_frame

# A request body over this is answered 413. It admits one image at MAX_IMAGE_BYTES (20 MiB, 26.7 MiB in
# base64) or many small ones; the server holds about three copies of a body while it answers (the bytes,
# the parsed JSON, the data frame's strings), so a request costs at most ~100 MiB before decoding.
MAX_REQUEST_BYTES = 32 * 2**20
MODEL_URI_VARIABLE = "CLASSWISE_SERVE_MODEL_URI"  # how `--workers` processes learn the model to serve
SERVE_FIX = "serve a version registered by 'kedro run --pipelines=train' (make mlflow-ui lists them)"


class RequestLimits:
    """ASGI middleware: read a request body up to ``max_bytes``, then hand it on whole; past that,
    answer 413 without keeping it. A body without a Content-Type gets 415 (MLflow's app fails on it, 500).

    The rest of a body too large is read and dropped, so that the client, still sending, gets the
    413 rather than a reset connection; memory stays at ``max_bytes`` whatever the Content-Length says.
    """

    def __init__(self, app, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > self.max_bytes
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            too_large = too_large or size > self.max_bytes
            if not too_large:
                chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if too_large:
            answer = _error(413, "REQUEST_TOO_LARGE", f"The request body is over {self.max_bytes // 2**20} MiB; send "
                            f"fewer images a request (each at most {MAX_IMAGE_BYTES // 2**20} MiB encoded).")
            return await answer(scope, receive, send)
        if scope["method"] == "POST" and not headers.get(b"content-type"):
            answer = _error(415, "UNSUPPORTED_MEDIA_TYPE", "The request has no Content-Type; send application/json "
                            "(or application/vnd.apache.parquet).")
            return await answer(scope, receive, send)
        body = b"".join(chunks)
        del chunks
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _error(status: int, code: str, message: str) -> JSONResponse:
    """An answer in MLflow's own error shape."""
    return JSONResponse(status_code=status, content={"error_code": code, "message": message})


def _nested_too_deeply(request: Request, exc: Exception) -> JSONResponse:
    return _error(400, "BAD_REQUEST", "The request is nested too deeply to parse; send one row an image, "
                  "as docs/predict_and_serve.md shows.")


class _ClasswisePredict:
    """What PyFuncModel calls: the Predictor of this package, not code from the model directory."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def predict(self, model_input, params=None):
        return predict_frame(self.predictor, model_input)


def create_app(model_uri: str):
    """MLflow's scoring app for ``model_uri``, loaded as data, with the request limits above.

    ModelError (one sentence) when ``model_uri`` is not a Classwise model that can be read safely.
    """
    predictor, metadata = load_logged_predictor(model_uri, fix=SERVE_FIX)
    # This package's signature, not the logged one: a version logged before the image column became
    # base64 text (binary) would have MLflow decode it, and one bad item fail the whole request.
    metadata.signature = SIGNATURE
    app = scoring_server.init(PyFuncModel(model_meta=metadata, model_impl=_ClasswisePredict(predictor)))
    app.add_exception_handler(RecursionError, _nested_too_deeply)
    app.add_middleware(RequestLimits, max_bytes=MAX_REQUEST_BYTES)
    return app


def app_from_environment():
    """The factory each ``--workers`` process calls (uvicorn imports it by name)."""
    return create_app(os.environ[MODEL_URI_VARIABLE])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classwise.serving.server", description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model-uri", required=True, help="e.g. models:/classwise/3 or models:/classwise/latest")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("-p", "--port", type=int, default=5001)
    parser.add_argument("-w", "--workers", type=int, default=1, help="server processes, each with the model")
    args = parser.parse_args(argv)
    import uvicorn

    try:
        app = create_app(args.model_uri)  # refuse a bad model here, in one sentence, before any worker starts
    except ClasswiseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port)
        return 0
    # Several processes: uvicorn's own command, as mlflow models serve runs it. Its worker processes
    # re-import the main module before they answer the parent's 5 s health check; this module
    # imports torch and MLflow, which takes longer, and the workers would be killed as hung.
    os.environ[MODEL_URI_VARIABLE] = args.model_uri
    factory = "classwise.serving.server:app_from_environment"
    os.execv(sys.executable, [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", args.host,
                              "--port", str(args.port), "--workers", str(args.workers)])


if __name__ == "__main__":
    sys.exit(main())
