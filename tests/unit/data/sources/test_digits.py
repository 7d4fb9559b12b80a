import numpy as np
import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.data.sources import DataConfig, available_sources, load_source
from classwise.data.sources.digits import imbalanced_keep_counts


def test_digits_are_32x32_rgb_uint8_and_imbalanced():
    result = load_source(DataConfig(source="digits"))
    data = result.data
    assert data.images.shape[1:] == (32, 32, 3) and data.images.dtype == np.uint8
    assert data.num_classes == 10 and data.class_names == [str(d) for d in range(10)]
    counts = data.class_counts()
    assert counts.min() / counts.max() < 0.4  # deliberately imbalanced, like the seed's 146..526
    assert len(set(data.ids)) == len(data)
    assert data.images.max() > 200  # scaled to the full uint8 range


def test_digits_are_deterministic_for_a_seed_and_differ_across_seeds():
    a = load_source(DataConfig(seed=1)).data
    b = load_source(DataConfig(seed=1)).data
    c = load_source(DataConfig(seed=2)).data
    assert a.ids == b.ids and np.array_equal(a.images, b.images)
    assert a.ids != c.ids


def test_keep_counts_span_the_requested_fractions():
    keep = imbalanced_keep_counts(np.full(10, 100), 0.28, seed=0)
    assert keep.max() == 100 and keep.min() == 28 and len(set(keep)) == 10


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown data source 'nope'.*digits"):
        DataConfig(source="nope")
    assert "digits" in available_sources()


def test_noise_zero_gives_the_clean_digits_and_noise_changes_them():
    clean = load_source(parse(DataConfig, {"digits": {"noise": 0.0}}, "data")).data
    noisy = load_source(DataConfig()).data
    assert clean.ids == noisy.ids
    assert not np.array_equal(clean.images, noisy.images)
    # jitter moves pixels but keeps each digit recognisably itself
    corr = np.corrcoef(clean.images[0, ..., 0].ravel(), noisy.images[0, ..., 0].ravel())[0, 1]
    assert corr > 0.5
