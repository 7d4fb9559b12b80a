import numpy as np
import pytest

from classwise.evaluation.confusion import (
    confusable_order,
    confusion_counts,
    confusion_table,
    row_normalised,
    top_confusions,
)


def test_rows_are_shares_of_the_true_class_and_an_absent_class_is_zero():
    labels = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 1, 2, 1, 0])
    counts = confusion_counts(labels, predicted, 3)
    assert counts.tolist() == [[2, 1, 1], [1, 1, 0], [0, 0, 0]]
    np.testing.assert_allclose(row_normalised(counts), [[0.5, 0.25, 0.25], [0.5, 0.5, 0], [0, 0, 0]])


def test_long_table_holds_every_cell_with_its_count_and_rate():
    counts = np.array([[5, 1, 0], [2, 3, 0], [0, 4, 4]])
    table = confusion_table(counts, ["a", "b", "c"])
    assert len(table) == 9
    assert list(table.columns) == ["true_label", "true", "predicted_label", "predicted", "count", "rate"]
    row = table[(table["true"] == "c") & (table["predicted"] == "b")].iloc[0]
    assert row["count"] == 4 and row["rate"] == pytest.approx(0.5)
    rebuilt = np.zeros_like(counts)
    rebuilt[table["true_label"], table["predicted_label"]] = table["count"]
    assert rebuilt.tolist() == counts.tolist()
    np.testing.assert_allclose(table.groupby("true_label")["rate"].sum(), 1)


def test_top_confusions_are_off_diagonal_by_rate_then_count():
    counts = np.array([[5, 1, 0], [2, 2, 0], [0, 6, 6]])
    top = top_confusions(counts, ["a", "b", "c"], k=2)
    assert list(top.columns) == ["true", "predicted", "rate", "count"]
    # c->b is 6/12 = 0.5 with 6 images, b->a is 2/4 = 0.5 with 2 images, a->b is 1/6.
    assert top[["true", "predicted"]].values.tolist() == [["c", "b"], ["b", "a"]]
    assert top["count"].tolist() == [6, 2]


def test_a_perfect_model_has_no_confusions():
    assert top_confusions(np.diag([3, 4, 5]), ["a", "b", "c"], k=10).empty


def test_order_seats_confused_classes_side_by_side():
    # Pairs (0, 5), (1, 3), (2, 4) confuse each other; nothing else does.
    counts = np.eye(6, dtype=int) * 8
    for a, b in [(0, 5), (1, 3), (2, 4)]:
        counts[a, b] = counts[b, a] = 2
    order = confusable_order(row_normalised(counts)).tolist()
    assert sorted(order) == list(range(6))
    position = {c: i for i, c in enumerate(order)}
    for a, b in [(0, 5), (1, 3), (2, 4)]:
        assert abs(position[a] - position[b]) == 1, order


def test_order_without_confusion_keeps_the_labels():
    assert confusable_order(row_normalised(np.diag([1, 2, 3, 4]))).tolist() == [0, 1, 2, 3]
