import numpy as np
import pandas as pd
import pytest
from scipy import stats

from classwise.evaluation.correlation import f1_size_correlation
from classwise.evaluation.metrics import per_class_table, summary_metrics


def test_per_class_report_matches_a_hand_computed_case():
    # class 0: 3 true, predicted 0,0,1 ; class 1: 2 true, predicted 1,0 ; class 2: 1 true, predicted 2
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 0, 2])
    table = per_class_table(labels, predicted, ["a", "b", "c"], np.array([30, 20, 10]), "val")
    # class a: TP 2, FP 1 (the b predicted a), FN 1 -> P 2/3, R 2/3, F1 2/3
    # class b: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2 ; class c: perfect
    np.testing.assert_allclose(table["precision"], [2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(table["recall"], [2 / 3, 1 / 2, 1])
    np.testing.assert_allclose(table["f1"], [2 / 3, 1 / 2, 1])
    assert table["support"].tolist() == [3, 2, 1]
    assert table["train_count"].tolist() == [30, 20, 10]
    assert list(table.columns) == ["subset", "class", "precision", "recall", "f1", "support", "train_count"]


def test_a_class_never_predicted_or_present_gets_zero_not_an_error():
    table = per_class_table(np.array([0, 0]), np.array([0, 0]), ["a", "b"], np.array([5, 5]), "test")
    assert table.loc[1, ["precision", "recall", "f1", "support"]].tolist() == [0, 0, 0, 0]


def test_summary_metrics_top1_top5_macro_f1_balanced():
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], dtype=np.float32
    )
    labels = np.array([0, 1, 1, 2])
    m = summary_metrics(labels, probs)
    assert m["top1"] == pytest.approx(0.5)  # rows 0 and 2 right
    assert m["top5"] == 1.0  # k is capped at the class count
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["n_images"] == 4


def test_top5_works_for_two_classes():
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    assert summary_metrics(np.array([0, 1]), probs)["top5"] == 1.0
    assert summary_metrics(np.array([0, 1]), probs)["top1"] == 0.5


def _report(f1, sizes):
    return pd.DataFrame(
        {"subset": "val", "class": [f"c{i}" for i in range(len(f1))], "f1": f1, "train_count": sizes}
    )


def test_correlation_matches_scipy_and_names_low_classes():
    f1 = [0.9, 0.4, 0.7, 0.3, 0.8]
    sizes = [500, 150, 300, 200, 450]
    result = f1_size_correlation(_report(f1, sizes), "val", 0.5)
    assert result["pearson_r"] == pytest.approx(stats.pearsonr(sizes, f1).statistic)
    assert result["spearman_rho"] == pytest.approx(stats.spearmanr(sizes, f1).statistic)
    assert result["n_classes"] == 5 and result["defined"]
    assert [c["class"] for c in result["classes_below_threshold"]] == ["c3", "c1"]


def test_correlation_is_null_when_f1_is_constant():
    result = f1_size_correlation(_report([1.0, 1.0, 1.0], [10, 20, 30]), "val", 0.5)
    assert result["pearson_r"] is None and result["spearman_rho"] is None and not result["defined"]
