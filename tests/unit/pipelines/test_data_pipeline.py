"""The data pipeline on a user's folder: in-memory slice, and `kedro run --pipelines=data` as typed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from PIL import Image

from classwise.pipeline_registry import register_pipelines
from classwise.pipelines.data.nodes import count_split


class KeptDataset(MemoryDataset):
    def _release(self) -> None:
        pass


def _png(seed: int, size: int = 32) -> bytes:
    out = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def make_folder(root: Path) -> None:
    """Three classes of 8 images, one broken file, a note, and one image filed under two classes."""
    for c, name in enumerate(["birds", "red fox", "ñandú"]):
        for i in range(8):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_png(100 * c + i, size=40 if i == 0 else 32))
    (root / "birds" / "broken.png").write_bytes(_png(5)[:60])
    (root / "birds" / "notes.txt").write_text("shot in spring")
    (root / "ñandú" / "7.png").write_bytes((root / "birds" / "3.png").read_bytes())


def test_data_pipeline_on_an_image_folder(tmp_path):
    make_folder(tmp_path / "images")
    kept = ["dataset", "split", "rejected_images", "duplicate_images", "ingest_counts", "split_counts", "label_noise"]
    catalog = DataCatalog({
        "params:data": MemoryDataset({"source": "image_folder", "root": str(tmp_path / "images"),
                                      "image_folder": {"workers": 1, "progress": False}}),
        "params:split": MemoryDataset({"val_per_class": 2, "test_per_class": 2, "seed": 0}),
        "params:normalization": MemoryDataset({"mode": "computed"}),
        **{name: KeptDataset() for name in kept},
    })
    SequentialRunner().run(register_pipelines()["data"], catalog)
    dataset = catalog["dataset"].load()
    assert dataset.class_names == ["birds", "red fox", "ñandú"] and len(dataset) == 24
    rejects = catalog["rejected_images"].load()
    assert rejects["action"].tolist() == ["rejected", "ignored"]
    assert Path(rejects["path"].iloc[0]).name == "broken.png"
    duplicates = catalog["duplicate_images"].load()
    assert set(duplicates["id"]) == {"birds/3.png", "ñandú/7.png"} and duplicates["across_classes"].all()
    counts = {k: v["value"] for k, v in catalog["ingest_counts"].load().items()}
    assert counts["rejected_files"] == 1 and counts["ignored_files"] == 1 and counts["resized"] == 3
    split_counts = {k: v["value"] for k, v in catalog["split_counts"].load().items()}
    assert split_counts["val_images"] == 6 and split_counts["train_images"] == 12
    assert catalog["label_noise"].load().empty


def test_count_split_reports_each_subset():
    split = pd.DataFrame({"label": [0, 0, 0, 1, 1], "subset": pd.Categorical(
        ["train", "train", "val", "train", "test"], categories=["train", "val", "test"])})
    counts = {k: v["value"] for k, v in count_split(split).items()}
    assert counts["train_images"] == 3 and counts["val_images"] == 1 and counts["test_images"] == 1
    assert counts["train_smallest_class"] == 1 and counts["train_largest_class"] == 2
