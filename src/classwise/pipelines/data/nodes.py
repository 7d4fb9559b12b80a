"""Nodes of the data pipeline: ingest, validate, split, normalisation statistics, distribution."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from classwise.core.config import parse
from classwise.core.errors import ConfigError, DataError
from classwise.evaluation.figures import class_distribution_figure
from classwise.data.sources import DataConfig, LabelledImages, load_source
from classwise.data.duplicates import find_duplicates
from classwise.data.label_fixes import apply_label_fixes as fix_labels
from classwise.data.label_fixes import read_label_fixes
from classwise.data.split import SUBSETS, SplitConfig, check_class_sizes, split_table, subset_index
from classwise.data.stats import NormalizationConfig, normalization_stats
from classwise.framework.tracking import as_logged_metrics

log = logging.getLogger(__name__)

REJECT_COLUMNS = ["path", "action", "reason"]
LABEL_NOISE_COLUMNS = ["id", "label", "true_label", "class_name", "true_class_name"]
APPLIED_COLUMNS = ["id", "action", "from_class", "to_class", "note"]


def ingest_images(data_params: dict[str, Any]) -> tuple[LabelledImages, pd.DataFrame, pd.DataFrame, dict]:
    """Read the configured source: its images, every file not used (and why), the labels it
    flipped on purpose (synthetic noise), and its counts for MLflow."""
    cfg = parse(DataConfig, data_params, "data")
    result = load_source(cfg)
    rejects = pd.DataFrame(result.rejects, columns=REJECT_COLUMNS)
    n_rejected = int((rejects["action"] == "rejected").sum())
    n_ignored = len(rejects) - n_rejected
    log.info(
        "Ingested %d images in %d classes from source '%s' (%s); %d broken files rejected, "
        "%d other files ignored%s.",
        len(result.data), result.data.num_classes, cfg.source,
        ", ".join(f"{key} {value}" for key, value in result.summary.items()) or "no details", n_rejected, n_ignored,
        " (each listed in data/02_intermediate/rejected_images.csv)" if len(rejects) else "",
    )
    label_noise = pd.DataFrame(result.label_noise, columns=LABEL_NOISE_COLUMNS)
    counts = {**result.summary, "images": len(result.data), "classes": result.data.num_classes,
              "rejected_files": n_rejected, "ignored_files": n_ignored, "labels_flipped": len(label_noise)}
    return result.data, rejects, label_noise, as_logged_metrics(counts)


def apply_label_fixes(ingested: LabelledImages, data_params: dict[str, Any]) -> tuple[LabelledImages, pd.DataFrame]:
    """The decisions of ``data.label_fixes`` (drop or relabel named images) applied, each listed."""
    cfg = parse(DataConfig, data_params, "data")
    if not cfg.label_fixes:
        return ingested, pd.DataFrame(columns=APPLIED_COLUMNS)
    applied = fix_labels(ingested, read_label_fixes(cfg.label_fixes), cfg.label_fixes)
    actions = applied.log["action"].value_counts()
    log.info("Applied %d label fixes from '%s': %d images dropped, %d relabelled (each listed in "
             "data/02_intermediate/applied_label_fixes.csv).", len(applied.log), cfg.label_fixes,
             int(actions.get("drop", 0)), int(actions.get("relabel", 0)))
    return applied.data, applied.log


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
        raise DataError("Image ids are not unique; the source must give every image its own id.")
    return ingested


def report_duplicate_images(dataset: LabelledImages) -> pd.DataFrame:
    """Every image whose exact pixels appear again, grouped; kept in the data, for a person to judge."""
    duplicates = find_duplicates(dataset)
    if len(duplicates):
        across = duplicates.loc[duplicates["across_classes"], "group"].nunique()
        log.warning(
            "%d images are exact copies of another (%d groups); %d of the groups span more than "
            "one class, a likely labelling error. See data/02_intermediate/duplicate_images.csv.",
            len(duplicates), duplicates["group"].nunique(), across,
        )
    else:
        log.info("No exact duplicate images.")
    return duplicates


def split_dataset(dataset: LabelledImages, split_params: dict[str, Any]) -> pd.DataFrame:
    """Stratified per-class hold-out of val and test images, seeded."""
    cfg = parse(SplitConfig, split_params, "split")
    split = split_table(dataset, cfg)
    counts = split["subset"].value_counts()
    log.info(
        "Split: %s (%s, %s, seed %d).",
        ", ".join(f"{s} {counts.get(s, 0)}" for s in SUBSETS),
        cfg.holdout_rule("val"), cfg.holdout_rule("test"), cfg.seed,
    )
    return split


def count_split(split: pd.DataFrame) -> dict:
    """Images in each subset and the class-size range, for MLflow (named split.<count>)."""
    subsets = split["subset"].value_counts()
    per_class = split.groupby(["label", "subset"], observed=False).size().unstack("subset")
    counts = {f"{s}_images": int(subsets.get(s, 0)) for s in SUBSETS}
    for s in SUBSETS:
        if s in per_class:
            counts[f"{s}_smallest_class"] = int(per_class[s].min())
            counts[f"{s}_largest_class"] = int(per_class[s].max())
    return as_logged_metrics(counts)


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
