"""Benchmark: ingest a 35,000-image PNG folder (seed-shaped, 91 classes) with the image_folder source.

Writes the folder into a temporary directory, ingests it ``--runs`` times, and
prints each run's seconds and images per second and the median. Target: a
35,000-image folder in at most 30 s on 2 CPU cores.

    PYTHONPATH=src .venv/bin/python benchmarks/ingest_image_folder.py [--images 35000] [--runs 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from classwise.data.sources.image_folder import default_workers, load_image_folder
from classwise.data.sources.synthetic import load_synthetic


def _write(batch: tuple[list[str], np.ndarray]) -> None:
    paths, images = batch
    for path, image in zip(paths, images):
        Image.fromarray(image).save(path, format="PNG")


def write_folder(root: Path, n_images: int, workers: int) -> None:
    """Seed-shaped synthetic images (91 classes, 146..526 a class) saved as PNG files."""
    data = load_synthetic(seed=0, images=n_images).data
    for name in data.class_names:
        (root / name).mkdir(parents=True)
    paths = [str(root / data.class_names[label] / f"{i:05d}.png") for i, label in enumerate(data.labels)]
    step = 1000
    batches = [(paths[i : i + step], data.images[i : i + step]) for i in range(0, len(paths), step)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write, batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=35_000, help="images in the folder")
    parser.add_argument("--runs", type=int, default=3, help="ingests to time; the median is reported")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    args = parser.parse_args()

    workers = args.workers or default_workers()
    print(f"machine: {platform.platform()}, {default_workers()} usable CPU cores, "
          f"load average {os.getloadavg()[0]:.1f} (other work may share the cores)")
    print(f"python {platform.python_version()}, pillow {PIL.__version__}, numpy {np.__version__}; "
          f"decoding with {workers} processes")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        start = time.perf_counter()
        write_folder(root, args.images, workers)
        size_mb = sum(f.stat().st_size for f in root.rglob("*.png")) / 1e6
        print(f"wrote {args.images} PNG files ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s")
        seconds = []
        for run in range(1, args.runs + 1):
            start = time.perf_counter()
            result = load_image_folder(root, 32, workers=workers, progress=False)
            elapsed = time.perf_counter() - start
            seconds.append(elapsed)
            assert len(result.data) == args.images and not result.rejects
            print(f"run {run}: {elapsed:.2f} s, {args.images / elapsed:,.0f} images/s")
    median = statistics.median(seconds)
    print(f"median of {args.runs}: {median:.2f} s, {args.images / median:,.0f} images/s "
          f"(target: <= 30 s for 35,000 images on 2 cores)")


if __name__ == "__main__":
    main()
