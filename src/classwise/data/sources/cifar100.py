"""CIFAR-100 from its python archive (``cifar-100-python.tar.gz`` or the extracted folder).

Optionally cut to a seed-like set: 91 classes with 146..526 images a class, 35,384 in all.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from classwise.core.errors import ConfigError
from classwise.data.sources.base import LabelledImages, SourceResult
from classwise.data.sources.seed_shape import SEED_CLASSES, SEED_IMAGES, SEED_LARGEST, SEED_SMALLEST, seed_like_counts

log = logging.getLogger(__name__)

ARCHIVE = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
DEFAULT_ROOT = "data/01_raw"

# The archive is a pickle; these are the only globals a genuine one needs (numpy arrays,
# in the formats numpy 1 and 2 write them). Anything else could run code, so it is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load '{module}.{name}'")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict[str, Any]:
    try:
        blob = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ConfigError(
            f"'{where}' is not a CIFAR-100 python pickle ({exc}); replace it with a fresh copy "
            f"of {ARCHIVE} from {URL}."
        ) from exc
    if not isinstance(blob, dict):
        raise ConfigError(f"'{where}' does not hold a CIFAR-100 dict; replace it with a fresh copy from {URL}.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in blob.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """CIFAR rows of 3,072 bytes (the red plane, then green, then blue, each 32x32 row-major)
    as uint8 (N, 32, 32, 3)."""
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
        raise ConfigError(f"CIFAR-100 data must be rows of 3072 bytes, got shape {rows.shape}.")
    return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def find_archive(root: Path) -> Path | None:
    """The archive or extracted folder at or under ``root``, if there is one."""
    candidates = [root, root / FOLDER, root / ARCHIVE]
    for path in candidates:
        if path.is_dir() and (path / "meta").is_file() and (path / "train").is_file():
            return path
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return path
    return None


def read_members(location: Path, members: list[str]) -> dict[str, dict[str, Any]]:
    """The named pickles ('meta', 'train', 'test') from an archive or an extracted folder."""
    out: dict[str, dict[str, Any]] = {}
    if location.is_dir():
        for name in members:
            path = location / name
            if not path.is_file():
                raise ConfigError(f"'{path}' is missing from the extracted CIFAR-100 folder; "
                                  f"extract {ARCHIVE} from {URL} again.")
            out[name] = _unpickle(path.read_bytes(), str(path))
        return out
    try:
        with tarfile.open(location) as tar:
            for name in members:
                try:
                    raw = tar.extractfile(f"{FOLDER}/{name}")
                except KeyError:
                    raw = None
                if raw is None:
                    raise ConfigError(f"'{location}' has no member '{FOLDER}/{name}'; it is not the "
                                      f"CIFAR-100 python archive, get {ARCHIVE} from {URL}.")
                out[name] = _unpickle(raw.read(), f"{location}:{FOLDER}/{name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ConfigError(f"Cannot read the archive '{location}' ({exc}); it may be truncated, "
                          f"download {ARCHIVE} again from {URL}.") from exc
    return out


def _download(root: Path) -> None:
    from torchvision.datasets import CIFAR100  # only here: it is a heavy import

    try:
        CIFAR100(str(root), train=True, download=True)
    except Exception as exc:
        raise ConfigError(
            f"Could not download CIFAR-100 into '{root}' ({type(exc).__name__}: {exc}); without a "
            f"network, put {ARCHIVE} from {URL} into '{root}' and set data.cifar100.download=false."
        ) from exc


def seed_like_subset(labels: np.ndarray, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seed-like cut (91 classes, 146..526 a class, 35,384 images) and the classes kept."""
    counts = np.bincount(labels, minlength=num_classes)
    if num_classes < SEED_CLASSES or counts.max() < SEED_LARGEST:
        raise ConfigError(
            f"data.cifar100.seed_like needs {SEED_CLASSES} classes of up to {SEED_LARGEST} images, "
            f"but the archive holds {num_classes} classes of at most {counts.max()}; set "
            f"data.cifar100.seed_like=false or read both files (data.cifar100.files: [train, test])."
        )
    rng = np.random.default_rng(seed)
    kept = np.sort(rng.choice(num_classes, SEED_CLASSES, replace=False))
    targets = np.sort(seed_like_counts(seed, SEED_CLASSES, SEED_IMAGES, SEED_SMALLEST, SEED_LARGEST))
    # Largest targets go to the fullest classes so every target fits; ties (all of CIFAR-100's
    # 600s) are broken by the seeded noise, so which class gets which size is random.
    by_size = kept[np.argsort(counts[kept] + rng.random(len(kept)), kind="stable")]
    if (counts[by_size] < targets).any():
        raise ConfigError(
            "data.cifar100.seed_like needs more images in some class than the archive holds; "
            "read both files (data.cifar100.files: [train, test])."
        )
    target = dict(zip(by_size.tolist(), targets.tolist()))
    index = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: target[c]] for c in kept])
    return np.sort(index), kept


def load_cifar100(
    root: str | Path | None,
    files: list[str] | tuple[str, ...] = ("train", "test"),
    download: bool = False,
    seed_like: bool = False,
    seed: int = 0,
    image_size: int = 32,
) -> SourceResult:
    """CIFAR-100 fine labels; ids are ``cifar100/<file>/<row>`` so each image can be found again."""
    root = Path(root if root is not None else DEFAULT_ROOT)
    location = find_archive(root)
    if location is None and download:
        _download(root)
        location = find_archive(root)
    if location is None:
        raise ConfigError(
            f"No CIFAR-100 archive at '{root}' (looked for {ARCHIVE} and {FOLDER}/); put "
            f"{ARCHIVE} from {URL} there, point data.root at it, or set "
            f"data.cifar100.download=true on a machine with a network."
        )
    if not files:
        raise ConfigError("Parameter 'data.cifar100.files' is empty; list 'train', 'test' or both.")
    log.info("Reading CIFAR-100 (%s) from '%s'.", ", ".join(files), location)
    members = read_members(location, ["meta", *files])
    class_names = [_text(n) for n in members["meta"]["fine_label_names"]]
    images, labels, ids = [], [], []
    for name in files:
        part = members[name]
        if "data" not in part or "fine_labels" not in part:
            raise ConfigError(f"CIFAR-100 member '{name}' in '{location}' lacks 'data' or 'fine_labels'; "
                              f"get a fresh {ARCHIVE} from {URL}.")
        rows = rows_to_images(part["data"])
        part_labels = np.asarray(part["fine_labels"], dtype=np.int64)
        if len(part_labels) != len(rows):
            raise ConfigError(f"CIFAR-100 member '{name}' has {len(rows)} images but "
                              f"{len(part_labels)} labels; get a fresh {ARCHIVE} from {URL}.")
        if len(part_labels) and not 0 <= part_labels.min() <= part_labels.max() < len(class_names):
            raise ConfigError(f"CIFAR-100 member '{name}' has labels outside 0..{len(class_names) - 1}, "
                              f"the classes its meta file names; get a fresh {ARCHIVE} from {URL}.")
        images.append(rows)
        labels.append(part_labels)
        ids.extend(f"cifar100/{name}/{i:05d}" for i in range(len(rows)))
    all_images = np.concatenate(images)
    all_labels = np.concatenate(labels)
    summary = {"available": len(all_labels), "classes_available": len(class_names)}

    if seed_like:
        index, kept = seed_like_subset(all_labels, len(class_names), seed)
        remap = np.full(len(class_names), -1, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        all_images, all_labels = all_images[index], remap[all_labels[index]]
        ids = [ids[i] for i in index]
        class_names = [class_names[c] for c in kept]

    resized = 0
    if image_size != 32:
        all_images = _resize(all_images, image_size)
        resized = len(all_images)
    summary.update({"kept": len(all_labels), "classes": len(class_names), "resized": resized})
    data = LabelledImages(images=all_images, labels=all_labels, class_names=class_names, ids=ids)
    return SourceResult(data=data, summary=summary)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    out = []
    for start in range(0, len(images), 4096):  # batches keep the float copy small
        batch = torch.from_numpy(images[start : start + 4096]).permute(0, 3, 1, 2).float()
        big = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(big.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)
