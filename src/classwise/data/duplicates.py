"""Exact duplicate images: the same pixels under two ids, a likely labelling or leakage problem."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from classwise.data.sources.base import LabelledImages

DUPLICATE_COLUMNS = ["group", "id", "label", "class_name", "across_classes"]


def find_duplicates(data: LabelledImages) -> pd.DataFrame:
    """One row per image that shares its exact pixels with another.

    ``group`` numbers each set of identical images; ``across_classes`` is True when
    the set carries more than one label (the same picture filed under two classes).
    Compared after decoding and resizing, so the same picture saved as PNG and BMP matches too.
    """
    digests = [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in data.images]
    table = pd.DataFrame({"digest": digests, "label": data.labels, "id": data.ids})
    table = table[table["digest"].duplicated(keep=False)]
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(DUPLICATE_COLUMNS, ["int64", "str", "int64", "str", "bool"])})
    table["group"] = table.groupby("digest", sort=False).ngroup()
    table["across_classes"] = table.groupby("digest")["label"].transform("nunique").gt(1)
    table["class_name"] = np.asarray(data.class_names, dtype=object)[table["label"].to_numpy()]
    return table.sort_values(["group", "label", "id"])[DUPLICATE_COLUMNS].reset_index(drop=True)
