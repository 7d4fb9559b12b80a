"""Head / medium / tail groups, their metrics, and post-hoc logit adjustment."""

import numpy as np
import pytest

from classwise.evaluation.groups import adjust_probabilities, class_groups, describe_groups, group_metrics


def test_terciles_cut_classes_sorted_by_train_count_into_equal_thirds():
    counts = np.array([50, 10, 400, 30, 200, 20])
    groups = class_groups(counts)
    assert groups.tolist() == ["medium", "tail", "head", "medium", "head", "tail"]
    assert describe_groups(counts, groups)["tail"] == {"classes": 2, "train_count_min": 10, "train_count_max": 20}


def test_thresholds_put_tail_under_a_and_head_over_b():
    groups = class_groups(np.array([19, 20, 100, 101]), thresholds=[20, 100])
    assert groups.tolist() == ["tail", "medium", "medium", "head"]


def test_group_accuracy_counts_images_and_macro_f1_averages_the_groups_classes():
    groups = np.array(["head", "medium", "tail"])
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 1, 0, 0, 2])
    m = group_metrics(labels, predicted, groups)
    assert m["head_top1"] == 1.0 and m["medium_top1"] == 0.5 and m["tail_top1"] == 0.5
    # class 0: precision 3/5, recall 1 -> F1 0.75; class 2: precision 1, recall 1/2 -> F1 2/3
    assert m["head_macro_f1"] == pytest.approx(0.75) and m["tail_macro_f1"] == pytest.approx(2 / 3)


def test_a_group_without_images_is_left_out_not_zero():
    m = group_metrics(np.array([0, 1]), np.array([0, 1]), np.array(["head", "medium", "tail"]))
    assert "tail_top1" not in m and m["head_top1"] == 1.0


def test_post_hoc_adjustment_divides_by_the_prior_to_the_tau():
    probs = np.array([[0.6, 0.4]])
    counts = np.array([300, 100])  # prior 0.75 / 0.25
    assert np.allclose(adjust_probabilities(probs, counts, 0.0), probs)
    by_hand = np.array([0.6 / 0.75, 0.4 / 0.25])
    assert np.allclose(adjust_probabilities(probs, counts, 1.0), by_hand / by_hand.sum())
    assert adjust_probabilities(probs, counts, 1.0).argmax() == 1  # the rare class wins once its prior is removed
