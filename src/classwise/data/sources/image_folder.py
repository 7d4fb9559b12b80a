"""A user's own images laid out as ``<root>/<class name>/<image>``, decoded in parallel.

Any format and mode Pillow reads becomes RGB of ``size`` x ``size``; a file that
cannot be used is listed with its reason, never dropped silently.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from classwise.core.errors import ConfigError
from classwise.data.sources.base import LabelledImages, SourceResult

log = logging.getLogger(__name__)

# Every extension some Pillow plugin claims; anything else (.DS_Store, notes.txt) is not an image.
IMAGE_EXTENSIONS = frozenset(ext.lower() for ext in Image.registered_extensions())

REJECTED = "rejected"  # an image file that could not be decoded
IGNORED = "ignored"  # a file that is not meant as an image of a class


class BrokenImage(Exception):
    """An image that cannot be used; the message is the reason a user reads."""


# One image's decode budget, shared by ingest, predict and serving: the peak memory that decoding one
# image may take. It is estimated from the header, before a pixel is decoded (decode_bytes), so an
# image over it costs nothing: a 12000 x 12000 RGBA PNG (3.2 GiB to decode in full, measured) is refused.
# 512 MiB admits about 33 megapixels of opaque RGB (41 grey), 19 with transparency, 17 at 16 bits; a
# JPEG is first drafted to as little as 1/8 of its width and height, and the drafted size is counted.
MAX_DECODE_BYTES = 512 * 2**20
# Working copies prepare_image makes, each 4 bytes a pixel (Pillow keeps 3 or 4 bands in 4 bytes), on
# top of the decoded image. Measured as peak RSS (VmHWM) over 16-megapixel PNG, BMP, TIFF and WebP
# files, Pillow 13: opaque RGB 8 (PNG) to 15 (WebP) bytes a pixel in all, grey 6; RGBA and LA 23,
# P with transparency 17; 16-bit grey 27 (to_rgb's float64 arrays). Rounded up, with room for the
# copy an EXIF rotation makes.
WORKING_COPIES = {"opaque": 3, "alpha": 6, "high_bit": 7}


def decode_bytes(mode: str, width: int, height: int, transparency: bool = False) -> int:
    """About the peak memory, in bytes, that decoding a ``mode`` image of ``width`` x ``height``
    and preparing it (prepare_image) takes: the decoded pixels plus the working copies."""
    try:
        spec = ImageMode.getmode(mode)
        decoded = 4 if len(spec.bands) > 1 else np.dtype(spec.typestr).itemsize
    except (KeyError, TypeError):
        decoded = 4
    if mode.startswith("I") or mode == "F":
        path = "high_bit"
    elif transparency or "A" in mode or "a" in mode:
        path = "alpha"
    else:
        path = "opaque"
    return width * height * (decoded + 4 * WORKING_COPIES[path])


def check_decode_budget(mode: str, width: int, height: int, transparency: bool = False,
                        budget: int = MAX_DECODE_BYTES) -> None:
    """Refuse (BrokenImage, one sentence) an image whose decode would take more than ``budget`` bytes."""
    need = decode_bytes(mode, width, height, transparency)
    if need > budget:
        fits = budget / (need / (width * height)) / 1e6
        raise BrokenImage(
            f"too large ({width}x{height} pixels, {mode}: about {need / 2**20:,.0f} MiB to decode, over the "
            f"budget of {budget / 2**20:,.0f} MiB); shrink it to at most {fits:,.0f} megapixels"
        )


def default_workers() -> int:
    """CPU cores this process may use (respects taskset and container limits where visible)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: the kernel kills this worker when its parent dies, even by kill -9.

    Without it, decode workers outlive a killed ingest, each holding its memory.
    Linux only (prctl PR_SET_PDEATHSIG); elsewhere workers end when their pipe closes.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    # Ctrl-C reaches the whole process group: the parent alone handles it and cancels the
    # pool; a forked copy of its handlers must not run here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode as RGB; transparent pixels are composited on ``background``."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        # 16/32-bit and float greyscale: Pillow's own convert clips them to white, so rescale.
        values = np.asarray(img, dtype=np.float64)
        top = values.max() if values.size else 0.0
        if mode == "F" and top <= 1.0:
            values = values * 255.0
        elif top > 255:
            values = values / (257.0 if top <= 65535 else top / 255.0)
        return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB") if mode != "RGB" else img


def prepare_image(img: Image.Image, size: int, background: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """A loaded Pillow image as uint8 (size, size, 3): EXIF rotation, RGB, bicubic resize.

    Returns the array and whether the mode was converted. Training ingest, the predict
    pipeline and the served model all pass through here, so they see the same pixels.
    """
    # Phones store rotation in EXIF; apply it so images look as in any viewer.
    img = ImageOps.exif_transpose(img)
    converted = img.mode != "RGB"
    rgb = to_rgb(img, background)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8), converted


def decode_image(
    source: str | bytes, size: int, background: tuple[int, int, int], budget: int = MAX_DECODE_BYTES
) -> tuple[np.ndarray, bool, bool]:
    """One file (a path) or encoded image (bytes) as a uint8 (size, size, 3) array, and whether
    it was resized and converted.

    An image whose decode would take more than ``budget`` bytes (decode_bytes) is refused before
    its pixels are decoded. Raises BrokenImage with a readable reason when the image cannot be used.
    """
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    if (len(source) if is_bytes else os.path.getsize(source)) == 0:
        raise BrokenImage("empty file (0 bytes)" if not is_bytes else "empty image (0 bytes)")
    try:
        with Image.open(io.BytesIO(source) if is_bytes else source) as img:
            original_size = img.size
            img.draft("RGB", (size, size))  # JPEG only: decode at a reduced scale, much faster and smaller
            check_decode_budget(img.mode, *img.size, "transparency" in img.info, budget)
            img.load()  # Image.open is lazy; truncation only shows here
            pixels, converted = prepare_image(img, size, background)
            return pixels, original_size != (size, size), converted
    except UnidentifiedImageError:
        raise BrokenImage("not an image Pillow can read (unknown or corrupt header)") from None
    except Image.DecompressionBombError as exc:
        raise BrokenImage(f"too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc) if is_bytes else str(exc).replace(source, "<file>")
        if "truncated" in text.lower() or isinstance(exc, EOFError):
            raise BrokenImage(f"truncated image ({text})") from None
        raise BrokenImage(f"cannot decode ({type(exc).__name__}: {text})") from None


def _decode_chunk(
    paths: list[str], size: int, background: tuple[int, int, int]
) -> tuple[np.ndarray, list[int], list[tuple[int, str]], int, int]:
    """Decode a list of files: (images, positions decoded, [(position, reason)], resized, converted)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    decoded: list[int] = []
    broken: list[tuple[int, str]] = []
    resized = converted = 0
    for position, path in enumerate(paths):
        try:
            pixels, was_resized, was_converted = decode_image(path, size, background)
        except BrokenImage as exc:
            broken.append((position, str(exc)))
            continue
        except Exception as exc:  # one odd file must never stop a 35,000-image ingest
            broken.append((position, f"cannot decode ({type(exc).__name__}: {exc})"))
            continue
        out[len(decoded)] = pixels
        decoded.append(position)
        resized += was_resized
        converted += was_converted
    return out[: len(decoded)], decoded, broken, resized, converted


def decode_files(
    paths: list[str],
    size: int,
    background: tuple[int, int, int] = (255, 255, 255),
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, dict[int, str], int, int]:
    """Decode ``paths`` over ``workers`` processes.

    Returns (images of the decodable files in input order, their positions in ``paths``,
    {position: reason} of the broken ones, count resized, count converted to RGB).
    """
    workers = default_workers() if workers is None else max(1, workers)
    chunks = [(start, paths[start : start + chunk_size]) for start in range(0, len(paths), chunk_size)]
    images = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    broken: dict[int, str] = {}
    resized = converted = 0

    def collect(start: int, result: tuple) -> None:
        nonlocal resized, converted
        pixels, decoded, bad, n_resized, n_converted = result
        positions = start + np.asarray(decoded, dtype=np.int64)
        images[positions] = pixels
        ok[positions] = True
        broken.update({start + position: reason for position, reason in bad})
        resized += n_resized
        converted += n_converted

    with tqdm(total=len(paths), unit="img", desc="Decoding images", disable=not progress) as bar:
        if workers == 1 or len(chunks) <= 1:
            for start, chunk in chunks:
                collect(start, _decode_chunk(chunk, size, background))
                bar.update(len(chunk))
        else:
            # fork starts workers in milliseconds with Pillow already imported; spawn would
            # re-import torch and the project in every worker, which costs seconds.
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                       initializer=_die_with_parent, initargs=(os.getpid(),))
            try:
                futures = {pool.submit(_decode_chunk, chunk, size, background): (start, len(chunk))
                           for start, chunk in chunks}
                for future in as_completed(futures):
                    start, n = futures[future]
                    collect(start, future.result())
                    bar.update(n)
            finally:
                # On Ctrl-C or SIGTERM, drop the chunks not started instead of decoding them all first.
                pool.shutdown(wait=True, cancel_futures=True)
    positions = np.flatnonzero(ok)
    return images[positions], positions, broken, resized, converted


def scan_image_folder(root: Path) -> tuple[list[str], list[tuple[str, int]], list[dict[str, str]], int]:
    """Class folders, candidate image files with their labels, ignored files, and hidden entries skipped.

    Class folders are the non-hidden sub-folders of ``root``; images may sit in
    sub-folders of a class folder. Symlinked sub-folders are followed, each real
    folder once: a link back to a folder already walked (a loop, or a second link)
    is listed as ignored. Order is sorted, so labels and ids are stable.
    """
    if not root.exists():
        raise ConfigError(
            f"Image folder '{root}' (parameter 'data.root') does not exist; create it with one "
            f"sub-folder per class, or point data.root at your folder."
        )
    if not root.is_dir():
        raise ConfigError(
            f"'{root}' (parameter 'data.root') is a file, not a folder; point data.root at a "
            f"folder laid out as <root>/<class name>/<image>."
        )
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    ignored: list[dict[str, str]] = []
    hidden = 0
    class_dirs: list[os.DirEntry] = []
    for entry in entries:
        if entry.name.startswith("."):
            hidden += 1
            what = "hidden folder, skipped with its contents" if entry.is_dir() else "hidden file"
            ignored.append({"path": entry.path, "action": IGNORED, "reason": what})
        elif entry.is_dir():
            class_dirs.append(entry)
        else:
            ignored.append({"path": entry.path, "action": IGNORED,
                            "reason": "file directly in data.root, not inside a class folder"})
    if not class_dirs:
        state = "is empty" if not entries else "holds no class sub-folders"
        raise ConfigError(
            f"Image folder '{root}' (parameter 'data.root') {state}; lay your images out as "
            f"<root>/<class name>/<image>, one sub-folder per class."
        )
    if len(class_dirs) < 2:
        raise ConfigError(
            f"Image folder '{root}' holds one class folder ('{class_dirs[0].name}'); a classifier "
            f"needs at least two, so add a sub-folder per class."
        )

    files: list[tuple[str, int]] = []
    for label, class_dir in enumerate(class_dirs):
        paths, skipped, hidden_here = walk_image_files(class_dir.path)
        files.extend((path, label) for path in paths)
        ignored.extend(skipped)
        hidden += hidden_here
    return [d.name for d in class_dirs], files, ignored, hidden


def walk_image_files(folder: str) -> tuple[list[str], list[dict[str, str]], int]:
    """Image files under ``folder`` at any depth, sorted; the files and folders skipped, each with
    its reason (hidden, not an image by its extension, a symlink to a folder already read); and
    how many of those were hidden. Symlinked folders are followed, each real folder once."""
    files: list[str] = []
    ignored: list[dict[str, str]] = []
    hidden = 0
    walked = {_folder_key(folder)}
    for here, subfolders, names in os.walk(folder, followlinks=True):
        kept = []
        for sub in sorted(subfolders):
            path = os.path.join(here, sub)
            if sub.startswith("."):
                hidden += 1
                ignored.append({"path": path, "action": IGNORED, "reason": "hidden folder, skipped with its contents"})
            elif (key := _folder_key(path)) in walked:
                ignored.append({"path": path, "action": IGNORED, "reason": (
                    f"symlink to '{os.path.realpath(path)}', a folder already read "
                    f"(a loop or a second link); its images are counted once")})
            else:
                walked.add(key)
                kept.append(sub)
        subfolders[:] = kept  # os.walk descends only into what is left here
        for name in sorted(names):
            path = os.path.join(here, name)
            extension = os.path.splitext(name)[1].lower()
            if name.startswith("."):
                hidden += 1
                ignored.append({"path": path, "action": IGNORED, "reason": "hidden file"})
            elif extension not in IMAGE_EXTENSIONS:
                ignored.append({"path": path, "action": IGNORED,
                                "reason": f"not an image file (extension '{extension or 'none'}')"})
            else:
                files.append(path)
    return files, ignored, hidden


def _folder_key(path: str) -> tuple[int, int]:
    """The identity of the real folder behind ``path`` (symlinks followed)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def load_image_folder(
    root: str | os.PathLike | None,
    image_size: int = 32,
    background: tuple[int, int, int] = (255, 255, 255),
    workers: int | None = None,
    progress: bool = True,
    chunk_size: int = 256,
) -> SourceResult:
    """Every image under ``root``, labelled by its class folder; broken and non-image files listed."""
    if root is None:
        raise ConfigError(
            "Parameter 'data.root' is not set; point it at your image folder, e.g. "
            "--params=data.source=image_folder,data.root=data/01_raw/my_images."
        )
    root = Path(root)
    class_names, files, ignored, hidden = scan_image_folder(root)
    paths = [path for path, _ in files]
    images, positions, broken, resized, converted = decode_files(
        paths, image_size, background, workers, progress, chunk_size
    )
    labels = np.asarray([files[i][1] for i in positions], dtype=np.int64)
    ids = [Path(paths[i]).relative_to(root).as_posix() for i in positions]
    rejects = [{"path": paths[i], "action": REJECTED, "reason": broken[i]} for i in sorted(broken)]
    if broken:
        log.warning("%d of %d image files could not be decoded; each is listed with its reason "
                    "in rejected_images.", len(broken), len(paths))
    data = LabelledImages(
        images=images.reshape(-1, image_size, image_size, 3),
        labels=labels, class_names=class_names, ids=ids,
    )
    summary = {
        "class_folders": len(class_names),
        "image_files": len(paths),
        "images": len(data),
        "rejected": len(broken),
        "ignored_non_image": len(ignored) - hidden,
        "hidden_skipped": hidden,
        "resized": resized,
        "converted_to_rgb": converted,
    }
    return SourceResult(data=data, rejects=rejects + ignored, summary=summary)
