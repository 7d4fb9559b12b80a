"""A user's image folder with every kind of odd and broken file, built inside the test."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classwise.core.errors import ConfigError
from classwise.pipelines.data.nodes import ingest_images, report_duplicate_images, validate_dataset
from classwise.data.sources import DataConfig, load_source
from classwise.data.sources.image_folder import load_image_folder

CLASSES = ["café crème", "dogs", "日本 猫"]  # sorted, so labels are 0, 1, 2
BLUE = (0, 0, 255)


def _png(array: np.ndarray, mode: str | None = None, **save) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format="PNG", **save)
    return out.getvalue()


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _rgb(seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def build_folder(root: Path) -> dict:
    """Good images in many formats and modes, broken files, non-image and hidden files.

    Returns {"good": {relative path: label}, "broken": {relative path: reason word},
    "ignored": [relative paths]}.
    """
    files: dict[str, bytes] = {}
    good: dict[str, int] = {}
    broken: dict[str, str] = {}

    def add_good(rel: str, data: bytes) -> None:
        files[rel] = data
        good[rel] = CLASSES.index(rel.split("/")[0])

    # café crème: many modes, all 32x32 except where noted
    transparent = np.zeros((32, 32, 4), dtype=np.uint8)
    transparent[..., 0] = 255
    transparent[:16, :, 3] = 255  # top half opaque red, bottom half fully transparent
    add_good("café crème/rgb.png", _png(_rgb(1)))
    add_good("café crème/rgba.png", _png(transparent, "RGBA"))
    add_good("café crème/grey.png", _png(np.full((32, 32), 77, np.uint8), "L"))
    add_good("café crème/sixteen.png", _png(np.full((32, 32), 65535, np.uint16)))
    palette = Image.fromarray(_rgb(2)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    add_good("café crème/palette.gif", _save(palette, "GIF"))
    add_good("café crème/la.png", _save(Image.new("LA", (32, 32), (200, 128)), "PNG"))
    # dogs: other formats and sizes, a sub-folder
    add_good("dogs/photo.jpg", _save(Image.fromarray(_rgb(3, (48, 64))), "JPEG", quality=90))
    add_good("dogs/cmyk.jpg", _save(Image.new("CMYK", (40, 40), (0, 255, 0, 0)), "JPEG"))
    add_good("dogs/pic.bmp", _save(Image.fromarray(_rgb(4)), "BMP"))
    add_good("dogs/pic.webp", _save(Image.fromarray(_rgb(5, (20, 20))), "WEBP", lossless=True))
    add_good("dogs/batch 2/deep.tiff", _save(Image.fromarray(_rgb(6)), "TIFF"))
    # 日本 猫: plain PNGs
    for i in range(4):
        add_good(f"日本 猫/{i}.png", _png(_rgb(10 + i)))

    full_png = _png(_rgb(20, (64, 64)))
    full_jpg = _save(Image.fromarray(_rgb(21, (64, 64))), "JPEG")
    for rel, data, word in [
        ("café crème/empty.png", b"", "empty"),
        ("dogs/truncated.png", full_png[: len(full_png) // 2], "truncated"),
        ("dogs/truncated.jpg", full_jpg[: len(full_jpg) // 2], "truncated"),
        ("日本 猫/notes.png", b"these are my notes, not a picture\n", "not an image"),
        ("日本 猫/garbage.jpg", bytes(np.random.default_rng(7).integers(0, 256, 500, dtype=np.uint8)),
         "not an image"),
    ]:
        files[rel] = data
        broken[rel] = word

    ignored = {
        ".DS_Store": b"\0\0\0\1Bud1",  # hidden file directly in root
        "readme.txt": b"my dataset",  # a file outside any class folder
        "dogs/.DS_Store": b"\0\0\0\1Bud1",
        "dogs/notes.txt": b"some notes",
        "dogs/LICENSE": b"CC-BY",
        ".git/config": b"[core]",  # hidden folder: skipped with its contents
        "日本 猫/.thumbs/0.png": _png(_rgb(30)),  # hidden sub-folder inside a class
    }
    files.update(ignored)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {"good": good, "broken": broken}


@pytest.fixture
def odd_folder(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "my images"
    return root, build_folder(root)


def _load(root: Path, **kw):
    opts = {"workers": 1, "progress": False, **kw}
    return load_image_folder(root, 32, opts.pop("background", (255, 255, 255)), **opts)


def test_every_good_file_is_ingested_with_its_label_and_unicode_class_names(odd_folder):
    root, expected = odd_folder
    result = _load(root)
    data = result.data
    assert data.class_names == CLASSES  # spaces and accents kept exactly
    assert dict(zip(data.ids, data.labels.tolist())) == expected["good"]
    assert data.images.shape == (len(expected["good"]), 32, 32, 3) and data.images.dtype == np.uint8


def test_every_broken_file_is_listed_with_its_reason(odd_folder):
    root, expected = odd_folder
    result = _load(root)
    rejects = pd.DataFrame(result.rejects)
    broken = rejects[rejects["action"] == "rejected"]
    relative = {Path(p).relative_to(root).as_posix(): r for p, r in zip(broken["path"], broken["reason"])}
    assert set(relative) == set(expected["broken"])
    for rel, word in expected["broken"].items():
        assert word in relative[rel], (rel, relative[rel])
    assert result.summary["rejected"] == len(expected["broken"])


def test_non_image_hidden_and_stray_files_are_ignored_counted_and_listed(odd_folder):
    root, _ = odd_folder
    result = _load(root)
    ignored = {Path(r["path"]).relative_to(root).as_posix(): r["reason"]
               for r in result.rejects if r["action"] == "ignored"}
    assert ignored == {
        ".DS_Store": "hidden file",
        ".git": "hidden folder, skipped with its contents",
        "readme.txt": "file directly in data.root, not inside a class folder",
        "dogs/.DS_Store": "hidden file",
        "dogs/notes.txt": "not an image file (extension '.txt')",
        "dogs/LICENSE": "not an image file (extension 'none')",
        "日本 猫/.thumbs": "hidden folder, skipped with its contents",
    }
    assert result.summary["hidden_skipped"] == 4 and result.summary["ignored_non_image"] == 3


def test_modes_become_rgb_transparency_on_the_background_and_sizes_are_counted(odd_folder):
    root, expected = odd_folder
    result = _load(root, background=BLUE)
    by_id = dict(zip(result.data.ids, result.data.images))
    rgba = by_id["café crème/rgba.png"]
    assert (rgba[:16] == (255, 0, 0)).all() and (rgba[16:] == BLUE).all()
    assert (by_id["café crème/grey.png"] == 77).all()
    assert (by_id["café crème/sixteen.png"] == 255).all()  # 16-bit white stays white, not clipped noise
    la = by_id["café crème/la.png"].astype(int)  # grey 200 at alpha 128 over blue
    assert np.allclose(la[0, 0], [100, 100, 100 + 127], atol=2)
    cmyk = by_id["dogs/cmyk.jpg"].astype(int)  # magenta in CMYK
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60 and cmyk[..., 2].mean() > 200
    assert np.array_equal(by_id["café crème/rgb.png"], _rgb(1))  # untouched when already right
    # photo.jpg (64x48), cmyk.jpg (40x40) and pic.webp (20x20) were resized
    assert result.summary["resized"] == 3
    assert result.summary["converted_to_rgb"] == 6  # RGBA, L, I;16, P, LA, CMYK


def test_parallel_decode_gives_the_same_result_as_serial(odd_folder):
    root, _ = odd_folder
    serial = _load(root)
    parallel = _load(root, workers=2, chunk_size=3)
    assert parallel.data.ids == serial.data.ids
    assert np.array_equal(parallel.data.images, serial.data.images)
    assert parallel.rejects == serial.rejects and parallel.summary == serial.summary


def test_the_source_is_selected_by_parameters(odd_folder):
    root, expected = odd_folder
    data, rejects, label_noise, counts = ingest_images({
        "source": "image_folder", "root": str(root), "image_size": 16,
        "image_folder": {"workers": 1, "progress": False},
    })
    assert data.images.shape[1:] == (16, 16, 3) and len(data) == len(expected["good"])
    assert list(rejects.columns) == ["path", "action", "reason"] and len(rejects) == 12
    assert label_noise.empty
    assert counts["rejected_files"]["value"] == 5 and counts["ignored_files"]["value"] == 7


def test_a_class_too_small_is_named_with_its_count(odd_folder):
    root, _ = odd_folder
    data = _load(root).data
    with pytest.raises(ConfigError, match=r"^Class '日本 猫' has 4 images, fewer than the 5 that"):
        validate_dataset(data, {"val_per_class": 2, "test_per_class": 2})
    assert validate_dataset(data, {"val_per_class": 1, "test_per_class": 2}) is data


def test_duplicate_images_across_classes_are_reported(tmp_path):
    root = tmp_path / "dups"
    same = _png(_rgb(99))
    for rel, data in {"a/1.png": same, "a/2.png": _png(_rgb(1)), "b/1.png": same, "b/2.png": _png(_rgb(2)),
                      "b/3.bmp": _save(Image.fromarray(_rgb(2)), "BMP")}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    report = report_duplicate_images(_load(root).data)
    groups = {frozenset(g["id"]): bool(g["across_classes"].iloc[0]) for _, g in report.groupby("group")}
    assert groups == {frozenset({"a/1.png", "b/1.png"}): True, frozenset({"b/2.png", "b/3.bmp"}): False}
    assert set(report.loc[report["id"] == "a/1.png", "class_name"]) == {"a"}


def test_no_duplicates_gives_an_empty_table_with_columns(odd_folder):
    root, _ = odd_folder
    report = report_duplicate_images(_load(root).data)
    assert report.empty and list(report.columns) == ["group", "id", "label", "class_name", "across_classes"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, r"'.*missing' \(parameter 'data.root'\) does not exist"),
        (lambda root: root.mkdir(), r"is empty; lay your images out as <root>/<class name>/<image>"),
        (lambda root: (root.mkdir(), (root / "x.png").write_bytes(_png(_rgb(0)))), r"holds no class sub-folders"),
        (lambda root: (root.mkdir(), (root / "cats").mkdir()), r"holds one class folder \('cats'\); .* at least two"),
        (lambda root: root.write_bytes(b"x"), r"is a file, not a folder"),
    ],
    ids=["missing", "empty", "no-class-folders", "one-class", "a-file"],
)
def test_unusable_root_is_one_clear_sentence(tmp_path, setup, message):
    root = tmp_path / "missing"
    setup(root)
    with pytest.raises(ConfigError, match=message):
        _load(root)


def test_root_not_set_and_bad_options_are_clear_errors():
    with pytest.raises(ConfigError, match="'data.root' is not set"):
        load_source(DataConfig(source="image_folder"))
    with pytest.raises(ConfigError, match="Unknown parameter 'data.image_folder.threads'"):
        ingest_images({"source": "image_folder", "image_folder": {"threads": 2}})
    with pytest.raises(ConfigError, match="'data.image_folder.workers' must be int or NoneType"):
        ingest_images({"source": "image_folder", "image_folder": {"workers": "many"}})
    with pytest.raises(ConfigError, match="'data.image_folder.background' must be three integers"):
        ingest_images({"source": "image_folder", "image_folder": {"background": [0, 0]}})


def test_symlinked_subfolders_are_followed_once_and_loops_listed(tmp_path):
    root = tmp_path / "images"
    outside = tmp_path / "more_cats"
    for folder, n in [(root / "cats", 2), (root / "dogs", 2), (outside, 3)]:
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_rgb(100 + i + n)).save(folder / f"{i}.png")
    (root / "cats" / "linked").symlink_to(outside, target_is_directory=True)
    (root / "cats" / "linked_again").symlink_to(outside, target_is_directory=True)
    (root / "dogs" / "loop").symlink_to(root / "dogs", target_is_directory=True)
    result = load_image_folder(root, workers=1, progress=False)
    ids = result.data.ids
    assert sorted(i for i in ids if i.startswith("cats/")) == [
        "cats/0.png", "cats/1.png", "cats/linked/0.png", "cats/linked/1.png", "cats/linked/2.png"]
    assert sorted(i for i in ids if i.startswith("dogs/")) == ["dogs/0.png", "dogs/1.png"]
    ignored = {Path(r["path"]).name: r["reason"] for r in result.rejects if r["action"] == "ignored"}
    assert set(ignored) == {"linked_again", "loop"}
    assert "a loop or a second link" in ignored["loop"] and str(root / "dogs") in ignored["loop"]
