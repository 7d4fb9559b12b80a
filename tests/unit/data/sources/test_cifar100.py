"""CIFAR-100's python pickle format, from a tiny archive written inside the test."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from classwise.core.errors import ConfigError
from classwise.data.sources import Cifar100Options, DataConfig, load_source
from classwise.data.sources.cifar100 import load_cifar100, seed_like_subset

NAMES = ["apple", "aquarium_fish", "baby"]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _member(images: np.ndarray, labels: list[int]) -> bytes:
    # As the real file: bytes keys, rows of R plane + G plane + B plane, labels a plain list.
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return pickle.dumps({b"data": rows, b"fine_labels": labels, b"coarse_labels": [0] * len(labels),
                         b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}, protocol=2)


def write_archive(root: Path, extracted: bool = False) -> dict:
    train, test = _images(7, 0), _images(4, 1)
    train_labels, test_labels = [0, 1, 2, 2, 1, 0, 2], [1, 1, 0, 2]
    members = {
        "meta": pickle.dumps({b"fine_label_names": [n.encode() for n in NAMES],
                              b"coarse_label_names": [b"fruit"]}, protocol=2),
        "train": _member(train, train_labels),
        "test": _member(test, test_labels),
    }
    root.mkdir(parents=True, exist_ok=True)
    if extracted:
        for name, data in members.items():
            (root / "cifar-100-python").mkdir(exist_ok=True)
            (root / "cifar-100-python" / name).write_bytes(data)
    else:
        with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"cifar-100-python/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return {"images": np.concatenate([train, test]), "labels": train_labels + test_labels}


@pytest.mark.parametrize("extracted", [False, True], ids=["tar.gz", "extracted"])
def test_parser_keeps_rows_channel_order_and_labels(tmp_path, extracted):
    expected = write_archive(tmp_path, extracted)
    result = load_source(DataConfig(source="cifar100", root=str(tmp_path)))
    data = result.data
    assert data.class_names == NAMES
    assert np.array_equal(data.images, expected["images"])  # row i, pixel (y, x), channel c
    assert data.labels.tolist() == expected["labels"]
    assert data.ids[:2] == ["cifar100/train/00000", "cifar100/train/00001"] and data.ids[7] == "cifar100/test/00000"


def test_a_red_plane_lands_in_the_red_channel(tmp_path):
    write_archive(tmp_path)
    data = load_cifar100(tmp_path, files=["train"]).data
    raw = pickle.loads(tarfile.open(tmp_path / "cifar-100-python.tar.gz").extractfile(
        "cifar-100-python/train").read(), encoding="bytes")[b"data"]
    assert np.array_equal(data.images[3, :, :, 0].ravel(), raw[3, :1024])  # first 1024 bytes: red
    assert np.array_equal(data.images[3, :, :, 2].ravel(), raw[3, 2048:])  # last 1024: blue
    assert data.images[3, 0, 1, 1] == raw[3, 1024 + 1]  # green, row 0, column 1


def test_only_the_chosen_files_and_resizing(tmp_path):
    write_archive(tmp_path)
    result = load_cifar100(tmp_path, files=["test"], image_size=16)
    assert len(result.data) == 4 and result.data.images.shape[1:] == (16, 16, 3)
    assert result.summary["resized"] == 4


def test_missing_archive_says_where_to_put_it(tmp_path):
    with pytest.raises(ConfigError, match=rf"No CIFAR-100 archive at '{tmp_path}'.*put cifar-100-python.tar.gz"):
        load_source(DataConfig(source="cifar100", root=str(tmp_path)))


def test_download_failure_offline_is_one_sentence(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(ConfigError, match=r"Could not download CIFAR-100 .*Network is unreachable.*put cifar-100"):
        load_source(DataConfig(source="cifar100", root=str(tmp_path), cifar100=Cifar100Options(download=True)))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "meta").write_bytes(pickle.dumps(Evil()))
    (folder / "train").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"is not a CIFAR-100 python pickle \(refusing to load"):
        load_cifar100(tmp_path, files=["train"])


def test_truncated_archive_is_a_clear_error(tmp_path):
    write_archive(tmp_path)
    archive = tmp_path / "cifar-100-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(ConfigError, match="Cannot read the archive .* download cifar-100-python.tar.gz again"):
        load_cifar100(tmp_path)


def test_seed_like_cut_has_the_seed_shape_and_follows_the_seed():
    labels = np.repeat(np.arange(100), 600)  # CIFAR-100 train + test: 600 a class
    index, kept = seed_like_subset(labels, 100, seed=5)
    counts = np.bincount(labels[index], minlength=100)[kept]
    assert len(kept) == 91 and counts.sum() == 35_384 and counts.min() == 146 and counts.max() == 526
    assert len(np.unique(index)) == len(index)
    again, kept_again = seed_like_subset(labels, 100, seed=5)
    other, _ = seed_like_subset(labels, 100, seed=6)
    assert np.array_equal(index, again) and np.array_equal(kept, kept_again)
    assert not np.array_equal(index, other)


def test_seed_like_needs_enough_images(tmp_path):
    write_archive(tmp_path)
    with pytest.raises(ConfigError, match="seed_like needs 91 classes"):
        load_cifar100(tmp_path, seed_like=True)
