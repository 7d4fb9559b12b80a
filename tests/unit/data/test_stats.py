import numpy as np

from classwise.pipelines.data.nodes import compute_normalization_stats
from classwise.data.split import SplitConfig, split_table
from classwise.data.stats import NormalizationConfig, channel_stats, normalization_stats


def test_channel_stats_match_numpy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=7)
    floats = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, floats.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, floats.std(0), rtol=1e-8)


def test_stats_use_the_train_subset_only(small_images):
    split = split_table(small_images, SplitConfig(val_per_class=3, test_per_class=3))
    before = compute_normalization_stats(small_images, split, {"mode": "computed"})
    val_rows = np.flatnonzero((split["subset"] == "val").to_numpy())
    small_images.images[val_rows] = 255  # change every validation image
    after = compute_normalization_stats(small_images, split, {"mode": "computed"})
    assert before == after
    train_rows = np.flatnonzero((split["subset"] == "train").to_numpy())
    small_images.images[train_rows[0]] = 255  # change one training image
    assert compute_normalization_stats(small_images, split, {"mode": "computed"}) != after


def test_fixed_mode_gives_the_seed_values():
    stats = normalization_stats(np.zeros((1, 2, 2, 3), np.uint8), NormalizationConfig(mode="fixed"))
    assert stats["mean"] == [0.49] * 3 and stats["std"] == [0.25] * 3
