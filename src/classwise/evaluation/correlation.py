"""How per-class F1 follows class size (the seed measured Pearson r = 0.16)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from classwise.core.errors import DataError


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of two (B, n) arrays; NaN where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denom = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (xc * yc).sum(axis=1) / denom, np.nan)


def bootstrap_pearson_interval(
    size: np.ndarray, f1: np.ndarray, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None, int]:
    """Percentile interval of Pearson r over classes resampled with replacement.

    Returns (low, high, resamples used). With a few dozen classes a resample can draw
    the same F1 (or size) for every class, where r is undefined; those resamples are
    dropped and counted rather than turned into NaN bounds, which is why this is
    written out instead of calling scipy.stats.bootstrap.
    """
    size = np.asarray(size, dtype=float)
    f1 = np.asarray(f1, dtype=float)
    n = len(size)
    if n < 3 or resamples < 1:
        return None, None, 0
    rng = np.random.default_rng(seed)
    rs = []
    # Chunks bound memory: 2000 x 91 is small, but a user may ask for 10^5 resamples.
    for start in range(0, resamples, 1000):
        idx = rng.integers(0, n, size=(min(1000, resamples - start), n))
        rs.append(_rowwise_pearson(size[idx], f1[idx]))
    r = np.concatenate(rs)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return None, None, 0
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(r, [tail, 100 - tail])
    return float(low), float(high), int(len(r))


def f1_size_correlation(
    report: pd.DataFrame,
    subset: str,
    threshold: float,
    bootstrap_resamples: int = 2000,
    bootstrap_seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Pearson and Spearman correlation of per-class F1 with training-set class size.

    ``report`` is the per-class report; the rows of ``subset`` are used. When F1 or
    size is the same for every class the correlation is undefined and reported as null.
    The interval for r resamples classes (not images), seeded, so a rerun gives the
    same bounds.
    """
    rows = report[report["subset"] == subset]
    if rows.empty:
        raise DataError(f"The per-class report has no rows for subset '{subset}'; choose a subset the split holds images of.")
    f1 = rows["f1"].to_numpy(dtype=float)
    size = rows["train_count"].to_numpy(dtype=float)
    defined = len(rows) >= 3 and np.ptp(f1) > 0 and np.ptp(size) > 0
    low_r = high_r = None
    used = 0
    if defined:
        pearson = stats.pearsonr(size, f1)
        spearman = stats.spearmanr(size, f1)
        values = {
            "pearson_r": _finite_or_none(pearson.statistic),
            "pearson_p": _finite_or_none(pearson.pvalue),
            "spearman_rho": _finite_or_none(spearman.statistic),
            "spearman_p": _finite_or_none(spearman.pvalue),
        }
        low_r, high_r, used = bootstrap_pearson_interval(size, f1, bootstrap_resamples, bootstrap_seed, level)
    else:
        values = dict.fromkeys(("pearson_r", "pearson_p", "spearman_rho", "spearman_p"))
    low = rows[rows["f1"] < threshold].sort_values("f1")
    return {
        "subset": subset,
        **values,
        "pearson_r_ci_low": low_r,
        "pearson_r_ci_high": high_r,
        "ci_level": float(level),
        "bootstrap_resamples": int(bootstrap_resamples),
        "bootstrap_resamples_used": used,
        "bootstrap_seed": int(bootstrap_seed),
        "defined": bool(defined),
        "n_classes": int(len(rows)),
        "f1_threshold": float(threshold),
        "classes_below_threshold": [
            {"class": str(c), "f1": float(v), "train_count": int(n)}
            for c, v, n in zip(low["class"], low["f1"], low["train_count"])
        ],
    }
