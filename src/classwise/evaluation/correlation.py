"""How per-class F1 follows class size (the seed measured Pearson r = 0.16)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def f1_size_correlation(report: pd.DataFrame, subset: str, threshold: float) -> dict:
    """Pearson and Spearman correlation of per-class F1 with training-set class size.

    ``report`` is the per-class report; the rows of ``subset`` are used. When F1 or
    size is the same for every class the correlation is undefined and reported as null.
    """
    rows = report[report["subset"] == subset]
    if rows.empty:
        raise ValueError(f"The per-class report has no rows for subset '{subset}'.")
    f1 = rows["f1"].to_numpy(dtype=float)
    size = rows["train_count"].to_numpy(dtype=float)
    defined = len(rows) >= 3 and np.ptp(f1) > 0 and np.ptp(size) > 0
    if defined:
        pearson = stats.pearsonr(size, f1)
        spearman = stats.spearmanr(size, f1)
        values = {
            "pearson_r": _finite_or_none(pearson.statistic),
            "pearson_p": _finite_or_none(pearson.pvalue),
            "spearman_rho": _finite_or_none(spearman.statistic),
            "spearman_p": _finite_or_none(spearman.pvalue),
        }
    else:
        values = dict.fromkeys(("pearson_r", "pearson_p", "spearman_rho", "spearman_p"))
    low = rows[rows["f1"] < threshold].sort_values("f1")
    return {
        "subset": subset,
        **values,
        "defined": bool(defined),
        "n_classes": int(len(rows)),
        "f1_threshold": float(threshold),
        "classes_below_threshold": [
            {"class": c, "f1": float(v), "train_count": int(n)}
            for c, v, n in zip(low["class"], low["f1"], low["train_count"])
        ],
    }
