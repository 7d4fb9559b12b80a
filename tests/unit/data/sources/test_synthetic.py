"""The generated seed-shaped set: exact shape, deterministic, learnable with look-alike classes, noise recorded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.neighbors import NearestCentroid

from classwise.core.errors import ConfigError
from classwise.pipelines.data.nodes import ingest_images
from classwise.data.sources import DataConfig, SyntheticOptions, load_source
from classwise.data.sources.seed_shape import seed_like_counts
from classwise.data.sources.synthetic import flip_labels, load_synthetic

SMALL = {"classes": 12, "images": 1800, "smallest": 60, "largest": 250, "similar_pairs": 3}


@pytest.fixture(scope="module")
def seed_shaped():
    return load_source(DataConfig(source="synthetic"))


def test_synthetic_set_has_the_seed_shape(seed_shaped):
    data = seed_shaped.data
    counts = data.class_counts()
    assert data.num_classes == 91 and len(data) == 35_384
    assert counts.min() == 146 and counts.max() == 526
    assert data.images.shape == (35_384, 32, 32, 3) and data.images.dtype == np.uint8
    assert len(set(data.ids)) == len(data) and len(set(data.class_names)) == 91
    assert seed_shaped.label_noise == []


def test_synthetic_is_deterministic_for_a_seed():
    a, b = load_synthetic(seed=3, **SMALL), load_synthetic(seed=3, **SMALL)
    c = load_synthetic(seed=4, **SMALL)
    assert np.array_equal(a.data.images, b.data.images) and np.array_equal(a.data.labels, b.data.labels)
    assert not np.array_equal(a.data.images, c.data.images)


def test_learnable_but_look_alike_pairs_get_confused():
    data = load_synthetic(seed=0, classes=20, images=4000, smallest=120, largest=280, similar_pairs=4).data
    x = data.images.reshape(len(data), -1).astype(np.float32)
    train = np.arange(len(data)) % 4 != 0
    predicted = NearestCentroid().fit(x[train], data.labels[train]).predict(x[~train])
    accuracy = (predicted == data.labels[~train]).mean()
    assert 0.3 < accuracy < 0.98  # far above chance (0.05), yet not solved by class means
    cm = confusion_matrix(data.labels[~train], predicted, labels=range(20), normalize="true")
    pair_confusion = np.mean([cm[2 * k, 2 * k + 1] + cm[2 * k + 1, 2 * k] for k in range(4)]) / 2
    off_diagonal = cm[8:, 8:][~np.eye(12, dtype=bool)].mean()
    assert pair_confusion > 10 * off_diagonal


def test_label_noise_keeps_class_sizes_and_records_every_flip():
    clean = load_synthetic(seed=1, **SMALL)
    noisy = load_synthetic(seed=1, noise_rate=0.2, **SMALL)
    assert np.array_equal(noisy.data.class_counts(), clean.data.class_counts())
    assert np.array_equal(noisy.data.images, clean.data.images)
    changed = {clean.data.ids[i] for i in np.flatnonzero(noisy.data.labels != clean.data.labels)}
    recorded = {row["id"]: row for row in noisy.label_noise}
    assert set(recorded) == changed and 0.17 < len(changed) / len(clean.data) <= 0.2
    index = {id_: i for i, id_ in enumerate(noisy.data.ids)}
    for id_, row in recorded.items():
        assert row["label"] == noisy.data.labels[index[id_]] != row["true_label"]
        assert row["true_label"] == clean.data.labels[index[id_]]
        assert row["class_name"] == noisy.data.class_names[row["label"]]


def test_label_noise_reaches_the_catalog_table():
    _, _, label_noise, counts = ingest_images({"source": "synthetic", "synthetic": {**SMALL, "noise_rate": 0.1}})
    assert len(label_noise) == counts["labels_flipped"]["value"] > 0
    assert list(label_noise.columns) == ["id", "label", "true_label", "class_name", "true_class_name"]


def test_flip_labels_changes_only_the_chosen_share():
    labels = np.repeat(np.arange(5), 100)
    noisy, flipped = flip_labels(labels, 0.3, np.random.default_rng(0))
    assert np.array_equal(np.bincount(noisy), np.bincount(labels))
    assert set(np.flatnonzero(noisy != labels)) == set(flipped) and len(flipped) <= 150
    # 150 images (30%) pass their labels round; about one in five gets its own class back and is not counted.
    assert len(flipped) >= 100


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_seed_like_counts_are_exact(seed):
    counts = seed_like_counts(seed)
    assert len(counts) == 91 and counts.sum() == 35_384 and counts.min() == 146 and counts.max() == 526


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"noise_rate": 1.5}, r"'data.synthetic.noise_rate' must be in \[0, 1\)"),
        ({"classes": 10, "images": 100, "smallest": 50, "largest": 60}, r"'data.synthetic.images' \(100\) cannot"),
        ({"smallest": 600}, r"must satisfy 1 <= smallest <= largest"),
        ({"similar_pairs": 50}, r"'data.synthetic.similar_pairs' must be between 0 and 45"),
    ],
)
def test_impossible_options_are_one_sentence(options, message):
    with pytest.raises(ConfigError, match=message):
        load_source(DataConfig(source="synthetic", synthetic=SyntheticOptions(**options)))
