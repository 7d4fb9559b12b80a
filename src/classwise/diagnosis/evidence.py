"""The per-class diagnosis: size, look-alike partners and suspected mislabels, from out-of-fold predictions.

Every class gets hundreds of held-out predictions out of the K folds, against the ten or
so of a validation subset, so its F1 can be trusted; both are reported, and a weak-class
verdict says whether it holds on both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support

from classwise.evaluation.confusion import confused_partner, confusion_counts, row_normalised
from classwise.evaluation.correlation import f1_size_correlation
from classwise.diagnosis.config import DiagnoseConfig

OUT_OF_FOLD = "out_of_fold"
RELIABLE = "reliable"


def fold_reliability(oof_accuracy: float, num_classes: int, trained_val_top1: float | None,
                     cfg: DiagnoseConfig) -> str:
    """``"reliable"``, or why the fold models are too weak for their label-issue verdicts.

    Confident learning flags an image when the model trusts another class more than the given one;
    a model that is wrong about most images trusts other classes everywhere, and its flags follow
    its own errors. On 6,000 real CIFAR-100 images with 452 known flips, fold models at 30% held-out
    top-1 flagged 47% of the images at precision 0.12 (random flagging: 0.075). So the
    verdicts need the fold models right about most images (``min_oof_accuracy``, 0.5), and not
    far under what the trained model reaches (``min_share_of_trained`` of its val top-1, 0.75):
    below that, the folds saw too little training to speak for the data.
    """
    chance = 1 / max(num_classes, 1)
    if oof_accuracy < cfg.min_oof_accuracy:
        near = f" (near chance, {chance:.2f})" if oof_accuracy < 2 * chance else ""
        return (f"fold models too weak: out-of-fold top-1 {oof_accuracy:.2f}{near}, under "
                f"diagnose.min_oof_accuracy {cfg.min_oof_accuracy:.2f}")
    if trained_val_top1 is not None and oof_accuracy < cfg.min_share_of_trained * trained_val_top1:
        return (f"fold models too weak: out-of-fold top-1 {oof_accuracy:.2f}, under "
                f"{cfg.min_share_of_trained:.0%} of the trained model's val top-1 {trained_val_top1:.2f}")
    return RELIABLE


def _subset_f1(labels: np.ndarray, predicted: np.ndarray, subset: np.ndarray, name: str, n: int) -> np.ndarray:
    rows = subset == name
    if not rows.any():
        return np.full(n, np.nan)
    f1 = f1_score(labels[rows], predicted[rows], labels=np.arange(n), average=None, zero_division=0)
    present = np.bincount(labels[rows], minlength=n) > 0
    return np.where(present, f1, np.nan)


def class_diagnosis(
    labels: np.ndarray,
    probabilities: np.ndarray,
    subset: np.ndarray,
    class_names: list[str],
    issues: pd.DataFrame,
    cfg: DiagnoseConfig,
    reliability: str = RELIABLE,
    trained_val_f1: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row a class, weak classes first: counts, the trained model's val F1 (``trained_val_f1``, when
    there is one), the fold models' F1 on val, test and all images (``oof_*``), partners, flagged share,
    the fold models' ``reliability`` and the evidence in words (no mislabel verdict when not reliable)."""
    labels = np.asarray(labels, dtype=np.int64)
    subset = np.asarray(subset, dtype=object)
    n = len(class_names)
    names = np.asarray(class_names, dtype=object)
    predicted = np.asarray(probabilities).argmax(1)
    train_count = np.bincount(labels[subset == "train"], minlength=n)
    images = np.bincount(labels, minlength=n)
    size_rank = pd.Series(train_count).rank(method="min").to_numpy(dtype=int)  # 1 = smallest
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, labels=np.arange(n),
                                                               zero_division=0)
    rates = row_normalised(confusion_counts(labels, predicted, n))
    out_partner, out_rate = confused_partner(rates, axis=1)
    in_partner, in_rate = confused_partner(rates, axis=0)
    flagged = issues.drop_duplicates("id")["label"].to_numpy(dtype=np.int64) if len(issues) else np.zeros(0, int)
    flagged_share = np.bincount(flagged, minlength=n) / np.maximum(images, 1)
    table = pd.DataFrame({
        "label": np.arange(n),
        "class": names,
        "train_count": train_count,
        "size_rank": size_rank,
        "images": images,
        "val_f1": [np.nan if trained_val_f1 is None else trained_val_f1.get(str(c), np.nan) for c in names],
        "oof_val_f1": _subset_f1(labels, predicted, subset, "val", n),
        "oof_test_f1": _subset_f1(labels, predicted, subset, "test", n),
        "oof_precision": precision,
        "oof_recall": recall,
        "oof_f1": f1,
        "confused_with": names[out_partner],
        "confused_with_rate": out_rate,
        "mistaken_from": names[in_partner],
        "mistaken_from_rate": in_rate,
        "flagged": np.bincount(flagged, minlength=n),
        "flagged_share": flagged_share,
    })
    # Weak on val: the trained model's val F1 when there is one, else the fold models' on the val images.
    val = table["val_f1"].where(table["val_f1"].notna(), table["oof_val_f1"])
    weak_val = val < cfg.f1_threshold
    weak_oof = table["oof_f1"] < cfg.f1_threshold
    table["weak_on_val"] = weak_val
    table["weak_on_oof"] = weak_oof
    table["weak_verdict"] = np.select([weak_val & weak_oof, weak_val, weak_oof],
                                      ["holds on both", "val only", "out-of-fold only"], "")
    few = size_rank <= cfg.few_images_quantile * n
    overall_share = len(flagged) / max(len(labels), 1)
    table["reliability"] = reliability
    table["evidence"] = [
        _evidence(row, few[c], overall_share, cfg, reliability == RELIABLE)
        for c, row in enumerate(table.itertuples(index=False))
    ]
    table["_weak"] = weak_val | weak_oof
    table = table.sort_values(["_weak", "oof_f1", "label"], ascending=[False, True, True])
    return table.drop(columns="_weak").reset_index(drop=True)


def _evidence(row, few: bool, overall_share: float, cfg: DiagnoseConfig, reliable: bool = True) -> str:
    found = []
    if few:
        found.append(f"few images: {row.train_count}, smallest {cfg.few_images_quantile:.0%}")
    if row.confused_with_rate >= cfg.confusion_rate and row.confused_with_rate > 0:
        found.append(f"confused with {row.confused_with} {row.confused_with_rate:.0%}")
    if row.mistaken_from_rate >= cfg.confusion_rate and row.mistaken_from_rate > 0:
        found.append(f"{row.mistaken_from_rate:.0%} of {row.mistaken_from} taken for it")
    if not reliable:
        found.append("mislabel verdict held back: the fold models are too weak to judge (see reliability)")
    elif row.flagged_share >= cfg.mislabel_share and row.flagged_share > 0:
        # The share over all classes beside it: a weak fold model flags many images of every class.
        found.append(f"{row.flagged_share:.0%} suspected mislabels (all classes {overall_share:.0%})")
    if not found and (row.weak_on_val or row.weak_on_oof):
        found.append("no size, look-alike or mislabel evidence past the thresholds")
    return "; ".join(found)


def oof_correlations(diagnosis: pd.DataFrame, cfg: DiagnoseConfig) -> dict:
    """F1 against train class size, on val F1 (few images a class) and on out-of-fold F1, each with
    its bootstrap interval; the classes under the threshold on each."""
    report = pd.concat([
        pd.DataFrame({"subset": name, "class": diagnosis["class"], "f1": diagnosis[column],
                      "train_count": diagnosis["train_count"]})
        for name, column in (("val", "oof_val_f1"), (OUT_OF_FOLD, "oof_f1"))
    ], ignore_index=True).dropna(subset=["f1"])
    result = {}
    for name in ("val", OUT_OF_FOLD):
        if (report["subset"] == name).any():
            result[name] = f1_size_correlation(report, name, cfg.f1_threshold, cfg.bootstrap_resamples,
                                               cfg.bootstrap_seed)
    return result
