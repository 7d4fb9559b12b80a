"""Nodes of the diagnose pipeline: thin wrappers around classwise.diagnosis."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from classwise.core.config import parse
from classwise.diagnosis import (
    DiagnoseConfig,
    class_diagnosis,
    duplicate_issues,
    find_issues,
    join_training_dynamics,
    oof_correlations,
    out_of_fold_probabilities,
    score_against_noise,
)
from classwise.diagnosis.audit import audit_figure, audit_summary, audit_tables, run_datalab
from classwise.diagnosis.evidence import OUT_OF_FOLD, RELIABLE, fold_reliability
from classwise.training.lineage import dataset_fingerprint
from classwise.diagnosis.figures import class_diagnosis_figure, label_issues_figure
from classwise.diagnosis.issues import CLEANLAB
from classwise.evaluation.metrics import summary_metrics
from classwise.pipelines.evaluate.nodes import build_report_page as report_with_diagnosis
from classwise.evaluation.per_class import COLUMNS as PER_CLASS_COLUMNS
from classwise.evaluation.report_page import OLD_EVALUATION, no_evaluation_page
from classwise.data.sources import LabelledImages
from classwise.data.label_fixes import fixes_template
from classwise.data.split import dataset_rows
from classwise.framework.tracking import CURVES, as_logged_metrics, log_epoch

log = logging.getLogger(__name__)

LOGGED_WEAK_CLASSES = 10  # weak classes named in the log; the table holds them all


def _stacked(oof_predictions: pd.DataFrame) -> np.ndarray:
    return np.stack(oof_predictions["probabilities"].to_numpy()).astype(np.float64)


def predict_out_of_fold(
    dataset: LabelledImages, split: pd.DataFrame, normalization_stats: dict, diagnose_params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Every image of the split predicted by a model that never trained on it (K stratified folds), the
    history of the folds' training, and every image's embedding by all K fold models (for the audit)."""
    cfg = parse(DiagnoseConfig, diagnose_params, "diagnose")
    index = dataset_rows(dataset, split["id"], "The split", "rerun the data pipeline (kedro run --pipelines=data)")
    labels = dataset.labels[index]
    result = out_of_fold_probabilities(
        dataset.images[index], labels, dataset.class_names, normalization_stats["mean"], normalization_stats["std"],
        cfg.recipe, cfg.folds, cfg.seed, cfg.batch_size,
        on_epoch_end=lambda k, row: log_epoch(row, prefix=f"{CURVES}fold{k + 1}."),
    )
    probs = result.probabilities
    predictions = pd.DataFrame({
        "id": split["id"].astype(str).to_numpy(),
        "subset": split["subset"].astype(str).to_numpy(),
        "fold": result.fold,
        "label": labels,
        "predicted": probs.argmax(1),
        "confidence": probs.max(1),
        "fold_aum": result.aum,  # the area under the margin while the other folds' models trained on the image
        "probabilities": list(probs),
    })
    return predictions, pd.DataFrame(result.history), result.embeddings


def audit_data(oof_predictions: pd.DataFrame, fold_embeddings: np.ndarray, dataset: LabelledImages,
               ) -> tuple[pd.DataFrame, pd.DataFrame, plt.Figure, dict]:
    """cleanlab's Datalab on the out-of-fold probabilities and the fold models' embeddings: label issues,
    near-duplicates (across classes first), outliers, each class's label quality; a figure; counts."""
    labels, ids = oof_predictions["label"].to_numpy(), oof_predictions["id"].astype(str).tolist()
    lab = run_datalab(labels, _stacked(oof_predictions), fold_embeddings)
    audit, per_class = audit_tables(lab, ids, labels, dataset.class_names)
    values = audit_summary(audit, len(ids))
    log.info("Data audit (cleanlab Datalab, out-of-fold probabilities + fold-model embeddings): %d label issues, "
             "%d near-duplicates (%d across classes), %d outliers; see data/08_reporting/data_issues.csv.",
             values["label_issues"], values["near_duplicate_issues"], values["near_duplicates_across_classes"],
             values["outlier_issues"])
    row_of = dict(zip(dataset.ids, range(len(dataset.ids))))
    figure = audit_figure(lambda image_id: dataset.images[row_of[image_id]], audit)
    return audit, per_class, figure, as_logged_metrics(values)


def find_label_issues(
    oof_predictions: pd.DataFrame, dataset: LabelledImages, duplicate_images: pd.DataFrame,
    diagnose_params: dict[str, Any], saved_model: dict | None = None,
    saved_training_dynamics: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, plt.Figure, pd.DataFrame]:
    """cleanlab's label issues on the out-of-fold probabilities, exact duplicates across classes joined,
    the trained model's training dynamics joined when it trained on this data, a grid of the top
    suspects, and the suspects as a fixes file to fill in (data.label_fixes), those both signals flag first."""
    cfg = parse(DiagnoseConfig, diagnose_params, "diagnose")
    labels = oof_predictions["label"].to_numpy()
    probs = _stacked(oof_predictions)
    ids = oof_predictions["id"].astype(str).tolist()
    issues = find_issues(labels, probs, ids, dataset.class_names, cfg.filter_by, cfg.cleanlab_jobs)
    issues = duplicate_issues(issues, duplicate_images, labels, probs, ids, dataset.class_names)
    dynamics = saved_training_dynamics if _trained_on(saved_model, dataset, "training dynamics") else None
    issues = join_training_dynamics(issues, dynamics)
    log.info("%d label issues among %d images (%.1f%%): %d from cleanlab (%s), %d exact duplicates across "
             "classes. See data/08_reporting/label_issues.csv.", len(issues), len(labels),
             100 * len(issues) / max(len(labels), 1), int((issues["reason"].str.startswith(CLEANLAB)).sum()),
             cfg.filter_by, int(issues["reason"].str.contains("duplicate").sum()))
    agreed = int(issues["dynamics_agree"].sum())
    if dynamics is not None and agreed:
        log.info("%d of them are flagged by the trained model's training dynamics too (dynamics_agree), the "
                 "likeliest mislabels: they open label_fixes_template.csv.", agreed)
    elif dynamics is not None:
        log.info("None of them is flagged by the trained model's training dynamics (training_dynamics.parquet).")
    top = issues.head(cfg.issues_in_figure)
    rows = dataset_rows(dataset, top["id"], "label_issues.csv", "rerun 'kedro run --pipelines=diagnose'")
    template = fixes_template(issues.sort_values("dynamics_agree", ascending=False, kind="stable"))
    return issues, label_issues_figure(dataset.images[rows], top), template


def _trained_on(saved_model: dict | None, dataset: LabelledImages, what: str) -> bool:
    """True when the saved model was trained on this dataset (so its outputs speak of these images)."""
    if saved_model is None:
        return False
    if saved_model["config"].get("dataset_fingerprint") != dataset_fingerprint(dataset):
        log.info("The saved model was trained on other data: the diagnosis uses no %s of it.", what)
        return False
    return True


def _trained_evaluation(saved_model: dict | None, saved_metrics: dict | None, saved_per_class_report,
                        dataset: LabelledImages) -> tuple[float | None, dict[str, float] | None]:
    """The trained model's val top-1 and per-class val F1, when the saved ones are of this dataset."""
    if saved_metrics is None or saved_per_class_report is None or not _trained_on(saved_model, dataset,
                                                                                   "evaluation"):
        return None, None
    rows = saved_per_class_report[saved_per_class_report["subset"] == "val"]
    val = saved_metrics.get("val", {}).get("top1")
    return (None if val is None else float(val)), dict(zip(rows["class"].astype(str), rows["f1"].astype(float)))


def diagnose_classes(
    oof_predictions: pd.DataFrame, dataset: LabelledImages, label_issues: pd.DataFrame,
    diagnose_params: dict[str, Any], saved_model: dict | None = None, saved_metrics: dict | None = None,
    saved_per_class_report: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, plt.Figure, dict]:
    """Per class: size, the trained model's val F1 (when one was evaluated on this data), the fold models'
    F1 on val, test and all images, look-alike partners, flagged share, whether the fold models are good
    enough to judge mislabels by, the evidence in words (weak classes first); its figure; F1 against class
    size on val and out-of-fold."""
    cfg = parse(DiagnoseConfig, diagnose_params, "diagnose")
    labels, probs = oof_predictions["label"].to_numpy(), _stacked(oof_predictions)
    trained_val_top1, trained_val_f1 = _trained_evaluation(saved_model, saved_metrics, saved_per_class_report,
                                                           dataset)
    oof_top1 = float((probs.argmax(1) == labels).mean())
    reliability = fold_reliability(oof_top1, len(dataset.class_names), trained_val_top1, cfg)
    if reliability != RELIABLE:
        log.warning("Label-issue verdicts are held back: %s. Every class's evidence says so; train the folds "
                    "longer (diagnose.recipe.epochs) or with a stronger recipe (docs/diagnose.md).", reliability)
    else:
        log.info("The fold models are good enough to judge by: out-of-fold top-1 %.2f%s.", oof_top1,
                 "" if trained_val_top1 is None else f" (the trained model's val top-1 {trained_val_top1:.2f})")
    if mlflow.active_run() is not None:
        mlflow.set_tag("diagnose.reliability", reliability)
    table = class_diagnosis(labels, probs, oof_predictions["subset"].to_numpy(), dataset.class_names, label_issues,
                            cfg, reliability, trained_val_f1)
    correlations = oof_correlations(table, cfg)
    weak = table[table["weak_verdict"] != ""]
    for _, row in weak.head(LOGGED_WEAK_CLASSES).iterrows():
        val = row["val_f1"] if pd.notna(row["val_f1"]) else row["oof_val_f1"]
        log.info("Weak class %s (%s; val F1 %.2f%s, out-of-fold F1 %.2f): %s", row["class"], row["weak_verdict"],
                 val, "" if pd.notna(row["val_f1"]) else " by the fold models", row["oof_f1"], row["evidence"])
    if len(weak) > LOGGED_WEAK_CLASSES:
        log.info("... and %d more weak classes; see data/08_reporting/class_diagnosis.csv.",
                 len(weak) - LOGGED_WEAK_CLASSES)
    def shown(value) -> str:
        return "n/a" if value is None or pd.isna(value) else f"{value:.2f}"

    for name, result in correlations.items():
        log.info("F1 vs class size (%s): Pearson r %s, 95%% interval %s to %s, over %d classes.", name,
                 shown(result["pearson_r"]), shown(result["pearson_r_ci_low"]), shown(result["pearson_r_ci_high"]),
                 result["n_classes"])
    return table, class_diagnosis_figure(table, cfg.f1_threshold, cfg.classes_in_figure), correlations


def summarize_diagnosis(
    oof_predictions: pd.DataFrame, label_issues: pd.DataFrame, label_noise: pd.DataFrame,
    class_diagnosis: pd.DataFrame, oof_f1_size_correlation: dict,
) -> dict:
    """Headline counts as MLflow metrics diagnose.<name>; precision and recall of the flagged images
    against the known flips when the source flipped labels on purpose."""
    summary = summary_metrics(oof_predictions["label"].to_numpy(), _stacked(oof_predictions))
    cleanlab_ids = label_issues.loc[label_issues["reason"].str.startswith(CLEANLAB), "id"]
    agreed = label_issues["dynamics_agree"].astype(bool)  # find_label_issues always joins the dynamics
    values: dict[str, float | None] = {
        "label_issues": len(label_issues),
        "cleanlab_issues": len(cleanlab_ids),
        "duplicate_issues": int(label_issues["reason"].str.contains("duplicate").sum()),
        "oof_accuracy": summary["top1"],
        "oof_macro_f1": summary["macro_f1"],
        "weak_classes_val": int(class_diagnosis["weak_on_val"].sum()),
        "weak_classes_oof": int(class_diagnosis["weak_on_oof"].sum()),
        "weak_classes_both": int((class_diagnosis["weak_verdict"] == "holds on both").sum()),
        "fold_models_reliable": float((class_diagnosis["reliability"] == RELIABLE).all()),
        "dynamics_agree": int(agreed.sum()),
    }
    for name, result in oof_f1_size_correlation.items():
        key = "oof" if name == OUT_OF_FOLD else name
        values[f"{key}_f1_size_pearson_r"] = result["pearson_r"]
        values[f"{key}_f1_size_pearson_r_ci_low"] = result["pearson_r_ci_low"]
        values[f"{key}_f1_size_pearson_r_ci_high"] = result["pearson_r_ci_high"]
    if len(label_noise):
        score = score_against_noise(cleanlab_ids, label_noise["id"])
        log.info("Against the %d flipped labels: %d of %d flagged are flips, precision %.3f, recall %.3f.",
                 score["flipped"], score["true_positives"], score["flagged"], score["precision"], score["recall"])
        values.update({f"noise_{k}": v for k, v in score.items()})
        if agreed.any():
            both = score_against_noise(label_issues.loc[agreed, "id"], label_noise["id"])
            values.update({f"noise_agreed_{k}": both[k] for k in ("flagged", "precision", "recall")})
    return as_logged_metrics(values)


def refresh_report_page(
    saved_model: dict | None, saved_metrics: dict | None, saved_per_class_report: pd.DataFrame | None,
    saved_f1_size_correlation: dict | None, saved_predictions: pd.DataFrame | None, dataset: LabelledImages,
    split: pd.DataFrame, evaluate_params: dict[str, Any], class_diagnosis: pd.DataFrame, label_issues: pd.DataFrame,
) -> str:
    """report.html again, now with this diagnosis on each weak class's card; the trained model's evaluation
    as the evaluate pipeline saved it. Without one (no `kedro run` yet), a page that says so."""
    saved = (saved_model, saved_metrics, saved_per_class_report, saved_f1_size_correlation, saved_predictions)
    if any(item is None for item in saved) or not set(saved_predictions["id"].astype(str)) <= set(dataset.ids):
        log.info("report.html holds the trained model's evaluation, and there is none for this data yet: "
                 "`kedro run` writes it, with this diagnosis on each weak class's card.")
        return no_evaluation_page(class_diagnosis)
    if not set(PER_CLASS_COLUMNS) <= set(saved_per_class_report.columns):
        log.warning("data/08_reporting/per_class_report.csv was written by an earlier Classwise; run `kedro run "
                    "--pipelines=evaluate` (no training) for a report.html with this diagnosis on it.")
        return no_evaluation_page(class_diagnosis, OLD_EVALUATION)
    log.info("report.html rewritten with this diagnosis on each weak class's card (data/08_reporting/report.html).")
    return report_with_diagnosis(saved_model, saved_metrics, saved_per_class_report, saved_f1_size_correlation,
                                 saved_predictions, dataset, split, evaluate_params, class_diagnosis, label_issues)
