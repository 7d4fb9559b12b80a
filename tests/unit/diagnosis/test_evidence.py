"""The per-class diagnosis: evidence in words, weak classes first, F1 vs size on val and out-of-fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from classwise.diagnosis import DiagnoseConfig, class_diagnosis, oof_correlations
from classwise.diagnosis.evidence import OUT_OF_FOLD, fold_reliability
from classwise.diagnosis.figures import class_diagnosis_figure

NAMES = ["seal", "otter", "tiger", "bus", "rose"]


@pytest.fixture
def diagnosed():
    """'otter' is small and half predicted as 'seal'; 'rose' has many flagged images; the rest are right."""
    counts = [120, 30, 100, 110, 90]
    labels = np.repeat(np.arange(5), counts)
    predicted = labels.copy()
    otters = np.flatnonzero(labels == 1)
    predicted[otters[::2]] = 0
    subset = np.full(len(labels), "train", dtype=object)
    for c in range(5):
        members = np.flatnonzero(labels == c)
        subset[members[:5]] = "val"
        subset[members[5:10]] = "test"
    probabilities = np.eye(5)[predicted] * 0.9 + 0.02
    roses = np.flatnonzero(labels == 4)[:20]
    issues = pd.DataFrame({"id": [f"r{i}" for i in roses], "label": 4})
    cfg = DiagnoseConfig(f1_threshold=0.7, few_images_quantile=0.2, confusion_rate=0.15, mislabel_share=0.1, bootstrap_resamples=200)
    return class_diagnosis(labels, probabilities, subset, NAMES, issues, cfg), cfg


def test_weak_classes_come_first_with_their_evidence_in_words(diagnosed):
    table, _ = diagnosed
    otter = table.iloc[0]
    assert otter["class"] == "otter"
    assert otter["train_count"] == 20 and otter["size_rank"] == 1
    assert otter["confused_with"] == "seal" and otter["confused_with_rate"] == pytest.approx(0.5)
    assert otter["oof_recall"] == pytest.approx(0.5) and otter["oof_f1"] == pytest.approx(2 / 3)
    assert "few images: 20, smallest 20%" in otter["evidence"]
    assert "confused with seal 50%" in otter["evidence"]
    seal = table.set_index("class").loc["seal"]
    assert seal["mistaken_from"] == "otter" and "50% of otter taken for it" in seal["evidence"]
    rose = table.set_index("class").loc["rose"]
    assert rose["flagged"] == 20 and "22% suspected mislabels (all classes 4%)" in rose["evidence"]
    assert table.set_index("class").loc["bus", "evidence"] == ""


def test_a_verdict_says_whether_it_holds_on_val_and_out_of_fold(diagnosed):
    table, _ = diagnosed
    by_class = table.set_index("class")
    # otter: val F1 0.57 (5 images), out-of-fold F1 0.67 (all 30), both under 0.7
    assert by_class.loc["otter", "weak_verdict"] == "holds on both"
    # The fold models' F1 on the val images is named as theirs; no trained model here, so val_f1 is empty.
    assert by_class.loc["otter", "oof_val_f1"] == pytest.approx(4 / 7) and table["val_f1"].isna().all()
    assert (by_class.drop(index="otter")["weak_verdict"] == "").all()
    assert table["weak_on_val"].tolist() == (table["oof_val_f1"] < 0.7).tolist()


def test_correlations_come_with_intervals_on_both(diagnosed):
    table, cfg = diagnosed
    result = oof_correlations(table, cfg)
    assert set(result) == {"val", OUT_OF_FOLD}
    # Each on its own F1 column: val F1 (5 images a class) and out-of-fold F1 (every image) differ here.
    for name, column in (("val", "oof_val_f1"), (OUT_OF_FOLD, "oof_f1")):
        corr = result[name]
        assert corr["n_classes"] == 5 and corr["bootstrap_resamples"] == 200, name
        assert corr["pearson_r"] == pytest.approx(stats.pearsonr(table["train_count"], table[column]).statistic), name
        assert corr["pearson_r_ci_low"] is not None and corr["pearson_r_ci_high"] is not None, name
        assert corr["pearson_r_ci_low"] <= corr["pearson_r"] <= corr["pearson_r_ci_high"], name
        assert corr["bootstrap_resamples_used"] > 0, name
    assert result["val"]["pearson_r"] != pytest.approx(result[OUT_OF_FOLD]["pearson_r"])


def test_the_figure_draws_the_weakest_classes(diagnosed):
    table, _ = diagnosed
    fig = class_diagnosis_figure(table, 0.5, classes=3)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1].startswith("otter") and len(labels) == 3


def test_the_trained_models_val_f1_decides_weak_on_val_when_there_is_one():
    labels = np.repeat(np.arange(2), 10)
    subset = np.tile(["train", "val"], 10)
    probabilities = np.eye(2)[labels] * 0.9 + 0.05  # the fold models are right about every image
    cfg = DiagnoseConfig(f1_threshold=0.5, bootstrap_resamples=0)
    table = class_diagnosis(labels, probabilities, subset, ["a", "b"], pd.DataFrame(columns=["id", "label"]), cfg,
                            trained_val_f1={"a": 0.2, "b": 0.9}).set_index("class")
    assert table.loc["a", "val_f1"] == 0.2 and table.loc["a", "oof_val_f1"] == 1.0
    assert table.loc["a", "weak_verdict"] == "val only" and table.loc["b", "weak_verdict"] == ""


@pytest.mark.parametrize(("oof", "trained", "expected"), [
    (0.08, None, "fold models too weak: out-of-fold top-1 0.08 (near chance, 0.10), under diagnose.min_oof_accuracy"),
    (0.30, None, "fold models too weak: out-of-fold top-1 0.30, under diagnose.min_oof_accuracy 0.50"),
    (0.60, 0.95, "fold models too weak: out-of-fold top-1 0.60, under 75% of the trained model's val top-1 0.95"),
    (0.60, None, "reliable"),
    (0.80, 0.95, "reliable"),
])
def test_the_gate_fires_on_weak_fold_models_and_not_on_good_ones(oof, trained, expected):
    assert fold_reliability(oof, 10, trained, DiagnoseConfig()).startswith(expected)


def test_unreliable_fold_models_hold_back_every_mislabel_verdict(diagnosed):
    _, cfg = diagnosed
    counts = [120, 30, 100, 110, 90]
    labels = np.repeat(np.arange(5), counts)
    subset = np.where(np.arange(len(labels)) % 10 == 0, "val", "train")
    issues = pd.DataFrame({"id": [f"r{i}" for i in range(20)], "label": 4})
    table = class_diagnosis(labels, np.eye(5)[labels], subset, NAMES, issues, cfg, reliability="fold models too weak")
    rose = table.set_index("class").loc["rose"]
    assert "suspected mislabels" not in rose["evidence"] and "held back" in rose["evidence"]
    assert (table["reliability"] == "fold models too weak").all()
