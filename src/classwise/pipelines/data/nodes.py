"""Nodes of the data pipeline: ingest, validate, split, normalisation statistics, distribution."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from classwise.config import ConfigError, parse
from classwise.evaluation.figures import class_distribution_figure
from classwise.sources import DataConfig, LabelledImages, load_source
from classwise.split import SUBSETS, SplitConfig, check_class_sizes, split_table, subset_index
from classwise.stats import NormalizationConfig, normalization_stats

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["path", "reason"]


def ingest_images(data_params: dict[str, Any]) -> tuple[LabelledImages, pd.DataFrame]:
    """Read the configured source; return its images and a table of every file not used."""
    cfg = parse(DataConfig, data_params, "data")
    result = load_source(cfg)
    rejects = pd.DataFrame(result.rejects, columns=REJECT_COLUMNS)
    log.info(
        "Ingested %d images in %d classes from source '%s'; %d files rejected%s.",
        len(result.data), result.data.num_classes, cfg.source, len(rejects),
        " (see data/02_intermediate/rejected_images.csv)" if len(rejects) else "",
    )
    for key, value in result.summary.items():
        log.info("  %s: %s", key, value)
    return result.data, rejects


def validate_dataset(ingested: LabelledImages, split_params: dict[str, Any]) -> LabelledImages:
    """Stop with one clear sentence if the data cannot be split and trained on."""
    cfg = parse(SplitConfig, split_params, "split")
    if len(ingested) == 0:
        raise ConfigError("The source yielded no images; check 'data.source' and 'data.root'.")
    present = np.unique(ingested.labels)
    if len(present) < 2:
        raise ConfigError(
            f"Found {len(present)} class with images; a classifier needs at least two. "
            f"Check 'data.root' holds one sub-folder per class."
        )
    check_class_sizes(ingested.class_counts(), ingested.class_names, cfg)
    if len(set(ingested.ids)) != len(ingested.ids):
        raise ValueError("Image ids are not unique; the source must give every image its own id.")
    return ingested


def split_dataset(dataset: LabelledImages, split_params: dict[str, Any]) -> pd.DataFrame:
    """Stratified per-class hold-out of val and test images, seeded."""
    cfg = parse(SplitConfig, split_params, "split")
    split = split_table(dataset, cfg)
    counts = split["subset"].value_counts()
    log.info(
        "Split: %s (%d val and %d test images a class, seed %d).",
        ", ".join(f"{s} {counts.get(s, 0)}" for s in SUBSETS),
        cfg.val_per_class, cfg.test_per_class, cfg.seed,
    )
    return split


def compute_normalization_stats(
    dataset: LabelledImages, split: pd.DataFrame, normalization_params: dict[str, Any]
) -> dict:
    """Per-channel mean and std of the training subset (or the fixed values)."""
    cfg = parse(NormalizationConfig, normalization_params, "normalization")
    stats = normalization_stats(dataset.images[subset_index(dataset, split, "train")], cfg)
    log.info("Normalisation (%s): mean %s, std %s.", cfg.mode,
             [round(m, 4) for m in stats["mean"]], [round(s, 4) for s in stats["std"]])
    return stats


def summarize_class_distribution(split: pd.DataFrame) -> tuple[pd.DataFrame, plt.Figure]:
    """Images per class and subset, as a table and a bar chart sorted by size."""
    table = (
        split.groupby(["label", "class_name", "subset"], observed=False).size()
        .unstack("subset", fill_value=0)
        .reindex(columns=list(SUBSETS), fill_value=0)
        .reset_index()
        .rename(columns={"class_name": "class"})
    )
    table = table[table[list(SUBSETS)].sum(axis=1) > 0]
    table["total"] = table[list(SUBSETS)].sum(axis=1)
    table = table.sort_values("label").reset_index(drop=True)
    return table, class_distribution_figure(table)
