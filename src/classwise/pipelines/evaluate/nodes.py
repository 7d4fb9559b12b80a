"""Nodes of the evaluate pipeline: predictions, metrics, per-class report, F1 vs class size,
confusions and figures. Thin wrappers around classwise.evaluation."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from classwise.core.config import parse
from classwise.evaluation.config import EvaluateConfig
from classwise.evaluation.confusion import (
    confusable_order,
    confusion_counts,
    confusion_table,
    row_normalised,
    top_confusions,
)
from classwise.evaluation.correlation import f1_size_correlation
from classwise.evaluation.figures import (
    confusion_matrix_figure,
    f1_vs_size_figure,
    misclassified_figure,
    training_curves_figure,
)
from classwise.evaluation.groups import adjust_probabilities, class_groups, describe_groups, group_metrics
from classwise.evaluation.metrics import summary_metrics
from classwise.evaluation.per_class import per_class_metrics, per_class_report
from classwise.evaluation.report_page import PageInputs, report_page
from classwise.training.lineage import check_lineage
from classwise.data.sources import LabelledImages
from classwise.data.split import SUBSETS, dataset_rows, subset_index
from classwise.framework.tracking import as_logged_metrics
from classwise.core.device import predict_proba
from classwise.models.loading import load_network
from classwise.core.errors import DataError

log = logging.getLogger(__name__)


def _class_names(split: pd.DataFrame) -> list[str]:
    names = split.drop_duplicates("label").sort_values("label")
    return names["class_name"].tolist()


def _subset_rows(predictions: pd.DataFrame, subset: str) -> pd.DataFrame:
    rows = predictions[predictions["subset"] == subset]
    if rows.empty:
        raise DataError(
            f"predictions.parquet holds no '{subset}' images; add '{subset}' to 'evaluate.subsets' (or, when "
            f"the split holds none, as with split.{subset}_per_class = 0, point evaluate.confusion_subset at a "
            f"subset with images) and rerun 'kedro run --pipelines=evaluate'."
        )
    return rows


def predict(
    model: dict,
    dataset: LabelledImages,
    split: pd.DataFrame,
    normalization_stats: dict,
    evaluate_params: dict[str, Any],
) -> pd.DataFrame:
    """Class probabilities for every image of the evaluated subsets, batched, in eval mode."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    check_lineage(model["config"], dataset, split, "The model in data/06_models/model.pt")
    network = load_network(model)
    frames = []
    for subset in cfg.subsets:
        index = subset_index(dataset, split, subset)
        if not len(index):
            log.info("The split holds no '%s' images (split.%s_per_class = 0?): skipped.", subset, subset)
            continue
        probs = predict_proba(
            network, dataset.images[index], normalization_stats["mean"], normalization_stats["std"],
            device=cfg.device, batch_size=cfg.batch_size, amp=cfg.amp, channels_last=cfg.channels_last,
        )
        frames.append(
            pd.DataFrame(
                {
                    "id": [dataset.ids[i] for i in index],
                    "subset": subset,
                    "label": dataset.labels[index],
                    "predicted": probs.argmax(1),
                    "confidence": probs.max(1),
                    "probabilities": list(probs.astype(np.float32)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def compute_metrics(
    predictions: pd.DataFrame,
    training_history: pd.DataFrame,
    split: pd.DataFrame | None = None,
    evaluate_params: dict[str, Any] | None = None,
) -> tuple[dict, dict]:
    """Headline metrics per subset, and the same flattened for MLflow.

    With the ``split``, each held-out subset also gets top-1 and macro-F1 of the head,
    medium and tail classes (by train count, ``metrics["groups"]`` says which), and,
    when ``evaluate.logit_adjust_tau`` is above 0, the same after post-hoc logit
    adjustment as ``adjusted_*``.

    ``train.top1`` and ``train.loss`` come from the last training epoch (augmented batches,
    weights still moving), as the seed reports train accuracy. When the train subset was
    predicted too, ``train`` also holds top5, macro_f1, balanced_accuracy and top1_eval,
    measured on the final weights in eval mode without augmentation.
    """
    if training_history.empty:
        raise DataError("training_history.csv has no epochs; rerun 'kedro run --pipelines=train'.")
    last = training_history.iloc[-1]
    metrics: dict[str, dict] = {
        "train": {"top1": float(last["train_accuracy"]), "loss": float(last["train_loss"])},
    }
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    train_counts = groups = None
    if split is not None:
        train_counts = np.bincount(split.loc[split["subset"] == "train", "label"], minlength=len(_class_names(split)))
        groups = class_groups(train_counts, cfg.group_thresholds)
    for subset, rows in predictions.groupby("subset", sort=False, observed=True):
        summary = summary_metrics(rows["label"].to_numpy(), np.stack(rows["probabilities"].to_numpy()))
        if groups is not None and subset != "train":
            summary.update(_group_and_adjusted(rows, train_counts, groups, cfg.logit_adjust_tau))
        if subset == "train":
            summary["top1_eval"] = summary.pop("top1")
            metrics["train"].update(summary)
        else:
            metrics[str(subset)] = summary
    metrics = {s: metrics[s] for s in SUBSETS if s in metrics}
    for subset, values in metrics.items():
        log.info("%s", _metrics_line(subset, values))
    flat = as_logged_metrics({
        f"{subset}_{name}": value
        for subset, values in metrics.items()
        for name, value in values.items()
        if name != "n_images"
    })
    if groups is not None:
        metrics["groups"] = describe_groups(train_counts, groups)
    return metrics, flat


def _group_and_adjusted(rows: pd.DataFrame, train_counts: np.ndarray, groups: np.ndarray, tau: float) -> dict:
    labels, probs = rows["label"].to_numpy(), np.stack(rows["probabilities"].to_numpy())
    out = group_metrics(labels, probs.argmax(1), groups)
    if tau > 0:
        adjusted = adjust_probabilities(probs, train_counts, tau)
        out.update({f"adjusted_{k}": v for k, v in summary_metrics(labels, adjusted).items() if k != "n_images"})
        out.update({f"adjusted_{k}": v for k, v in group_metrics(labels, adjusted.argmax(1), groups).items()})
    return out


def _metrics_line(subset: str, values: dict) -> str:
    """One console line a subset: the headline numbers, then head/medium/tail top-1 (when grouped)."""
    labels = {"top1": "top-1", "top1_eval": "top-1 (eval)", "loss": "loss", "top5": "top-5", "macro_f1": "macro-F1",
              "balanced_accuracy": "balanced"}
    shown = [f"{labels[k]} {v:.3f}" for k, v in values.items() if k in labels]
    groups = [g for g in ("head", "medium", "tail") if f"{g}_top1" in values]
    if groups:
        shown.append("/".join(groups) + " " + "/".join(f"{values[f'{g}_top1']:.3f}" for g in groups))
    if "adjusted_top1" in values:
        shown.append(f"adjusted top-1 {values['adjusted_top1']:.3f}")
    return f"{subset}: " + ", ".join(shown)


def build_per_class_report(
    predictions: pd.DataFrame, split: pd.DataFrame, evaluate_params: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Precision, recall, F1 and support per class and subset (val and test first, weakest class first), with
    the class's train count, size rank, group and most-confused partner; and the held-out numbers per class
    as MLflow metrics ``per_class/<class>.<subset>_<metric>``."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    names = _class_names(split)
    train_counts = np.bincount(split.loc[split["subset"] == "train", "label"], minlength=len(names))
    subsets = {str(subset): (rows["label"].to_numpy(), rows["predicted"].to_numpy())
               for subset, rows in predictions.groupby("subset", sort=False, observed=True)}
    report = per_class_report(subsets, names, train_counts, class_groups(train_counts, cfg.group_thresholds))
    return report, as_logged_metrics(per_class_metrics(report))


def correlate_f1_with_class_size(per_class_report: pd.DataFrame, evaluate_params: dict[str, Any]) -> tuple[dict, dict]:
    """Pearson (with a bootstrap interval) and Spearman correlation of F1 with class size;
    the classes under the threshold. Also the numbers worth comparing across runs, for MLflow."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    if not (per_class_report["subset"] == cfg.correlation_subset).any():
        raise DataError(
            f"per_class_report.csv holds no '{cfg.correlation_subset}' rows (the split holds no such images, as "
            f"with split.{cfg.correlation_subset}_per_class = 0); point evaluate.correlation_subset at a subset "
            f"with images, e.g. --params=evaluate.correlation_subset=test."
        )
    result = f1_size_correlation(
        per_class_report, cfg.correlation_subset, cfg.f1_threshold, cfg.bootstrap_resamples, cfg.bootstrap_seed
    )
    low = result["classes_below_threshold"]
    interval = (
        f" (95% CI {result['pearson_r_ci_low']:.3f} to {result['pearson_r_ci_high']:.3f})"
        if result["pearson_r_ci_low"] is not None else ""
    )
    def rounded(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    log.info(
        "F1 vs class size (%s, %d classes): Pearson r %s%s, Spearman rho %s. %d classes under F1 %.2f%s",
        cfg.correlation_subset, result["n_classes"], rounded(result["pearson_r"]), interval,
        rounded(result["spearman_rho"]),
        len(low), cfg.f1_threshold, (": " + ", ".join(f"{c['class']} ({c['f1']:.2f})" for c in low)) if low else ".",
    )
    # An undefined correlation (None) is left out of MLflow, not logged as 0.
    flat = as_logged_metrics({
        "f1_size_pearson_r": result["pearson_r"],
        "f1_size_pearson_r_ci_low": result["pearson_r_ci_low"],
        "f1_size_pearson_r_ci_high": result["pearson_r_ci_high"],
        "f1_size_spearman_rho": result["spearman_rho"],
        "classes_below_f1_threshold": len(low),
    })
    return result, flat


def summarize_confusion(
    predictions: pd.DataFrame, split: pd.DataFrame, evaluate_params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, plt.Figure]:
    """The normalised confusion matrix (long form), the most confused pairs, and the heatmap."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    names = _class_names(split)
    rows = _subset_rows(predictions, cfg.confusion_subset)
    counts = confusion_counts(rows["label"].to_numpy(), rows["predicted"].to_numpy(), len(names))
    rates = row_normalised(counts)
    top = top_confusions(counts, names, cfg.top_confusions)
    if len(top):
        log.info(
            "Most confused (%s): %s", cfg.confusion_subset,
            ", ".join(f"{t} -> {p} {r:.0%}" for t, p, r in top[["true", "predicted", "rate"]].head(5).values),
        )
    table = confusion_table(counts, names)
    table.insert(0, "subset", cfg.confusion_subset)
    figure = confusion_matrix_figure(rates, names, confusable_order(rates), cfg.confusion_subset)
    return table, top, figure


def plot_f1_vs_class_size(per_class_report: pd.DataFrame, f1_size_correlation: dict) -> plt.Figure:
    """Scatter of per-class F1 against train class size, with the fit and the weak classes named."""
    return f1_vs_size_figure(per_class_report, f1_size_correlation)


def plot_training_curves(training_history: pd.DataFrame) -> plt.Figure:
    """Loss, accuracy and learning rate per epoch."""
    return training_curves_figure(training_history)


def plot_misclassified(
    predictions: pd.DataFrame, dataset: LabelledImages, evaluate_params: dict[str, Any]
) -> plt.Figure:
    """A grid of the images the model got wrong with the highest confidence."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    rows = _subset_rows(predictions, cfg.confusion_subset)
    wrong = rows[rows["label"] != rows["predicted"]].sort_values(["confidence", "id"], ascending=[False, True])
    wrong = wrong.head(cfg.misclassified_images)
    index = dataset_rows(dataset, wrong["id"], "predictions.parquet", "rerun 'kedro run --pipelines=evaluate'")
    names = dataset.class_names
    return misclassified_figure(
        dataset.images[index],
        [names[i] for i in wrong["label"]],
        [names[i] for i in wrong["predicted"]],
        wrong["confidence"].to_numpy(),
        cfg.confusion_subset,
    )


def build_report_page(
    model: dict, metrics: dict, per_class_report: pd.DataFrame, f1_size_correlation: dict,
    predictions: pd.DataFrame, dataset: LabelledImages, split: pd.DataFrame, evaluate_params: dict[str, Any],
    saved_class_diagnosis: pd.DataFrame | None, saved_label_issues: pd.DataFrame | None,
) -> str:
    """report.html: the headline, F1 against class size, a card for each weak class and the whole table; with
    the last diagnosis's verdicts when one was saved for this data."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    config, correlation = model.get("config") or {}, f1_size_correlation
    diagnosis, label_issues = saved_class_diagnosis, saved_label_issues
    title = (f"Classwise report: {config.get('name', 'model')} on {len(dataset)} images in "
             f"{len(dataset.class_names)} classes")
    notes = [f"Model: {config.get('name', '?')} {config.get('options') or ''}, best epoch "
             f"{config.get('best_epoch', '?')}, trained {config.get('trained_at', 'at an unrecorded time')}; "
             f"dataset fingerprint {config.get('dataset_fingerprint', '?')}.",
             f"Weak means F1 under {correlation.get('f1_threshold', cfg.f1_threshold):g} on "
             f"{correlation.get('subset')}; misclassified images are from {cfg.confusion_subset}.",
             "Files beside this page: per_class_report.csv, top_confusions.csv, confusion_matrix.png, "
             "f1_size_correlation.json."]
    if diagnosis is None:
        notes.append("No diagnosis yet: `kedro run --pipelines=diagnose` adds its verdicts to each card.")
    elif label_issues is not None and len(label_issues) and not set(label_issues["id"]) <= set(dataset.ids):
        notes.append("The saved diagnosis was made on other data and is left out; rerun "
                     "`kedro run --pipelines=diagnose`.")
        diagnosis = label_issues = None
    return report_page(PageInputs(
        title=title, metrics=metrics, per_class_report=per_class_report, correlation=correlation,
        predictions=predictions, images=dataset.images, ids=list(dataset.ids), class_names=list(dataset.class_names),
        split=split, misclassified_subset=cfg.confusion_subset, diagnosis=diagnosis, label_issues=label_issues,
        notes=notes,
    ))
