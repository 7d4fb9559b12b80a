"""Nodes of the evaluate pipeline: predictions, metrics, per-class report, F1 vs class size."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from classwise.config import ConfigError, parse
from classwise.evaluation.correlation import f1_size_correlation
from classwise.evaluation.metrics import per_class_table, summary_metrics
from classwise.models import build_model
from classwise.sources import LabelledImages
from classwise.split import SUBSETS, subset_index
from classwise.training import predict_proba

log = logging.getLogger(__name__)


@dataclass
class EvaluateConfig:
    subsets: list[str] = field(default_factory=lambda: ["val", "test"])  # subsets to predict
    f1_threshold: float = 0.5  # classes under this F1 are named (the seed: 0.5)
    correlation_subset: str = "val"  # subset whose per-class F1 is set against class size
    batch_size: int = 1024  # images per forward pass
    device: str = "auto"  # auto, cpu, cuda, ...

    def __post_init__(self) -> None:
        for s in [*self.subsets, self.correlation_subset]:
            if s not in SUBSETS:
                raise ConfigError(f"Parameter 'evaluate' names subset '{s}'; use one of {', '.join(SUBSETS)}.")
        if self.correlation_subset not in self.subsets:
            raise ConfigError(
                f"Parameter 'evaluate.correlation_subset' is '{self.correlation_subset}', which is not "
                f"in 'evaluate.subsets' {self.subsets}; add it there."
            )


def _class_names(split: pd.DataFrame) -> list[str]:
    names = split.drop_duplicates("label").sort_values("label")
    return names["class_name"].tolist()


def predict(
    model: dict,
    dataset: LabelledImages,
    split: pd.DataFrame,
    normalization_stats: dict,
    evaluate_params: dict[str, Any],
) -> pd.DataFrame:
    """Class probabilities for every image of the evaluated subsets, batched."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    config = model["config"]
    network = build_model(config["name"], config["num_classes"], **config["options"])
    network.load_state_dict(model["state_dict"])
    frames = []
    for subset in cfg.subsets:
        index = subset_index(dataset, split, subset)
        probs = predict_proba(
            network, dataset.images[index], normalization_stats["mean"], normalization_stats["std"],
            device=cfg.device, batch_size=cfg.batch_size,
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


def compute_metrics(predictions: pd.DataFrame, training_history: pd.DataFrame) -> tuple[dict, dict]:
    """Headline metrics per subset, and the same flattened for MLflow."""
    metrics: dict[str, dict] = {}
    last = training_history.iloc[-1]
    # The seed reports train accuracy as seen during training (augmented batches, last epoch).
    metrics["train"] = {"top1": float(last["train_accuracy"]), "loss": float(last["train_loss"])}
    for subset, rows in predictions.groupby("subset", sort=False, observed=True):
        probs = np.stack(rows["probabilities"].to_numpy())
        metrics[str(subset)] = summary_metrics(rows["label"].to_numpy(), probs)
    for subset, values in metrics.items():
        log.info("%s: %s", subset, ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "n_images"))
    flat = {
        f"{subset}_{name}": {"value": float(value), "step": 0}
        for subset, values in metrics.items()
        for name, value in values.items()
        if name != "n_images"
    }
    return metrics, flat


def build_per_class_report(predictions: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support per class and subset, with the class's train count."""
    names = _class_names(split)
    train_counts = np.bincount(split.loc[split["subset"] == "train", "label"], minlength=len(names))
    tables = [
        per_class_table(rows["label"].to_numpy(), rows["predicted"].to_numpy(), names, train_counts, str(subset))
        for subset, rows in predictions.groupby("subset", sort=False, observed=True)
    ]
    return pd.concat(tables, ignore_index=True)


def correlate_f1_with_class_size(per_class_report: pd.DataFrame, evaluate_params: dict[str, Any]) -> dict:
    """Pearson and Spearman correlation of F1 with class size; the classes under the threshold."""
    cfg = parse(EvaluateConfig, evaluate_params, "evaluate")
    result = f1_size_correlation(per_class_report, cfg.correlation_subset, cfg.f1_threshold)
    low = result["classes_below_threshold"]
    log.info(
        "F1 vs class size (%s, %d classes): Pearson r %s, Spearman rho %s. %d classes under F1 %.2f%s",
        cfg.correlation_subset, result["n_classes"], result["pearson_r"], result["spearman_rho"],
        len(low), cfg.f1_threshold, (": " + ", ".join(f"{c['class']} ({c['f1']:.2f})" for c in low)) if low else ".",
    )
    return result
