"""Benchmark: concurrent requests of real images against `mlflow models serve` on 127.0.0.1.

Starts the server on a logged model (or uses one already running on loopback), fires
``--requests`` POST /invocations of ``--batch`` PNG images each, ``--concurrency`` at a time,
and prints throughput and p50/p95/p99 latency per repeat and the median over ``--repeats``.
Bounded: at most ``--requests`` a repeat and ``--max-seconds`` a repeat; loopback only.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_load.py --model-uri models:/classwise/latest \
        [--tracking-uri sqlite:///mlflow.db] [--requests 200] [--concurrency 8] [--batch 1] [--repeats 3]
    PYTHONPATH=src .venv/bin/python benchmarks/serve_load.py --url http://127.0.0.1:5001   # a running server

Images: ``--images`` (a file or folder, read as they are) or, by default, the first images
of data/02_intermediate/dataset.npz encoded as PNG.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from classwise.serving.register import png_bytes
from tests.support.servers import served_model
from classwise.data.sources.image_folder import walk_image_files

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def load_images(source: str, limit: int) -> list[bytes]:
    """Encoded images: the files under ``source``, or the images of a dataset .npz as PNG."""
    path = Path(source)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return [png_bytes(image) for image in npz["images"][:limit]]
    files = [str(path)] if path.is_file() else walk_image_files(str(path))[0]
    return [Path(f).read_bytes() for f in files[:limit]]


def payloads(images: list[bytes], batch: int, count: int) -> list[bytes]:
    """``count`` request bodies of ``batch`` images each, cycling through ``images``."""
    bodies = []
    for i in range(count):
        rows = [[base64.b64encode(images[(i * batch + j) % len(images)]).decode("ascii")] for j in range(batch)]
        bodies.append(json.dumps({"dataframe_split": {"columns": ["image"], "data": rows}}).encode())
    return bodies


def _post(url: str, body: bytes, timeout_s: float) -> tuple[float, int]:
    request = urllib.request.Request(f"{url}/invocations", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        status = 0
    return time.perf_counter() - started, status


def fire(url: str, bodies: list[bytes], concurrency: int, max_seconds: float, timeout_s: float = 60.0) -> dict:
    """POST every body, ``concurrency`` at a time; stop submitting after ``max_seconds``."""
    latencies: list[float] = []
    failed = 0
    started = time.perf_counter()

    def record(future) -> None:
        nonlocal failed
        seconds, status = future.result()
        if status == 200:
            latencies.append(seconds)
        else:
            failed += 1

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending = set()
        for body in bodies:
            if time.perf_counter() - started > max_seconds:
                break
            pending.add(pool.submit(_post, url, body, timeout_s))
            if len(pending) >= concurrency * 2:  # keep the queue short so the time bound holds
                done = next(as_completed(pending))
                pending.discard(done)
                record(done)
        for done in as_completed(pending):
            record(done)
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "requests_ok": len(latencies), "requests_failed": failed, "seconds": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def check_loopback(url: str) -> None:
    host = urllib.parse.urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"--url must point at this machine (127.0.0.1 or localhost), got '{host}'.")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a server already running on loopback (else one is started)")
    parser.add_argument("--model-uri", default="models:/classwise/latest", help="the model to serve")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="where the model is registered")
    parser.add_argument("--images", default="data/02_intermediate/dataset.npz", help="a folder, a file, or a .npz")
    parser.add_argument("--requests", type=int, default=200, help="requests a repeat (at most)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--batch", type=int, default=1, help="images a request")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests first")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time bound of a repeat")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of a started server")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)

    images = load_images(args.images, limit=max(args.batch * 64, 64))
    if not images:
        raise SystemExit(f"No images found in '{args.images}'.")
    bodies = payloads(images, args.batch, args.requests)

    def measure(url: str) -> dict:
        check_loopback(url)
        fire(url, bodies[: args.warmup], args.concurrency, args.max_seconds)
        runs = [fire(url, bodies, args.concurrency, args.max_seconds) for _ in range(args.repeats)]
        for i, run in enumerate(runs, 1):
            print(f"repeat {i}: {run}")
        return {"runs": runs, "median": {k: statistics.median(r[k] for r in runs) for k in runs[0]}}

    if args.url:
        result = measure(args.url.rstrip("/"))
    else:
        with tempfile.TemporaryDirectory() as tmp, \
                served_model(args.model_uri, args.tracking_uri, Path(tmp) / "server.log", workers=args.workers) as url:
            result = measure(url)
    result.update({
        "model_uri": args.model_uri if not args.url else None, "batch": args.batch,
        "concurrency": args.concurrency, "requests": args.requests, "workers": args.workers,
        "images_per_s": round(result["median"]["requests_per_s"] * args.batch, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
    })
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
