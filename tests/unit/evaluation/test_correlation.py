import numpy as np
import pandas as pd
import pytest
from scipy import stats

from classwise.evaluation.correlation import bootstrap_pearson_interval, f1_size_correlation


def _report(f1, sizes, subset="val"):
    return pd.DataFrame(
        {"subset": subset, "class": [f"c{i}" for i in range(len(f1))], "f1": f1, "train_count": sizes}
    )


def _seed_like(n=91, seed=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(126, 506, n)
    f1 = np.clip(0.55 + 0.0006 * sizes + rng.normal(0, 0.15, n), 0, 1)
    return sizes, f1


def test_interval_is_the_percentile_of_r_over_resampled_classes():
    sizes, f1 = _seed_like()
    low, high, used = bootstrap_pearson_interval(sizes, f1, resamples=500, seed=7)
    # The same draws, one resample at a time, through scipy.
    idx = np.random.default_rng(7).integers(0, len(sizes), size=(500, len(sizes)))
    rs = [stats.pearsonr(sizes[i], f1[i]).statistic for i in idx]
    assert (low, high) == pytest.approx(tuple(np.percentile(rs, [2.5, 97.5])))
    assert used == 500
    assert low < stats.pearsonr(sizes, f1).statistic < high


def test_interval_is_seeded_and_narrows_with_more_classes():
    sizes, f1 = _seed_like(n=91)
    assert bootstrap_pearson_interval(sizes, f1, seed=1) == bootstrap_pearson_interval(sizes, f1, seed=1)
    assert bootstrap_pearson_interval(sizes, f1, seed=1) != bootstrap_pearson_interval(sizes, f1, seed=2)
    small_low, small_high, _ = bootstrap_pearson_interval(sizes[:12], f1[:12], seed=1)
    low, high, _ = bootstrap_pearson_interval(sizes, f1, seed=1)
    assert high - low < small_high - small_low


def test_resamples_where_r_is_undefined_are_dropped_not_nan():
    # Four classes at F1 1.0 and one at 0.5: many resamples draw only 1.0s.
    low, high, used = bootstrap_pearson_interval(np.array([10, 20, 30, 40, 50]), np.array([1, 1, 1, 1, 0.5]), 400)
    assert 0 < used < 400
    assert np.isfinite([low, high]).all() and -1 <= low <= high <= 1


def test_json_carries_the_interval_and_its_settings():
    sizes, f1 = _seed_like()
    result = f1_size_correlation(_report(f1, sizes), "val", 0.5, bootstrap_resamples=300, bootstrap_seed=4)
    low, high, used = bootstrap_pearson_interval(sizes, f1, 300, 4)
    assert (result["pearson_r_ci_low"], result["pearson_r_ci_high"]) == (low, high)
    assert result["bootstrap_resamples"] == 300 and result["bootstrap_resamples_used"] == used
    assert result["bootstrap_seed"] == 4 and result["ci_level"] == 0.95


def test_undefined_correlation_has_no_interval():
    result = f1_size_correlation(_report([1.0] * 4, [10, 20, 30, 40]), "val", 0.5)
    assert result["pearson_r_ci_low"] is None and result["pearson_r_ci_high"] is None
    assert result["bootstrap_resamples_used"] == 0


def test_zero_resamples_gives_no_interval():
    sizes, f1 = _seed_like(n=20)
    result = f1_size_correlation(_report(f1, sizes), "val", 0.5, bootstrap_resamples=0)
    assert result["pearson_r"] is not None and result["pearson_r_ci_low"] is None


def test_unknown_subset_is_a_clear_error():
    with pytest.raises(ValueError, match="no rows for subset 'test'"):
        f1_size_correlation(_report([0.5, 0.6, 0.7], [1, 2, 3]), "test", 0.5)


def test_class_names_read_back_as_numbers_are_named_as_text():
    # A CSV round trip turns digit class names "0".."9" into integers.
    report = _report([0.1, 0.9, 0.8], [10, 20, 30]).assign(**{"class": [0, 1, 2]})
    assert f1_size_correlation(report, "val", 0.5)["classes_below_threshold"][0]["class"] == "0"
