"""Label issues from cleanlab, duplicates joined, and the score against known flips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from classwise.diagnosis import duplicate_issues, find_issues, score_against_noise

NAMES = ["cat", "dog", "fox"]


def _confident(labels: np.ndarray, flipped: dict[int, int], rng) -> np.ndarray:
    """Probabilities that believe the true class; images in ``flipped`` carry a wrong given label."""
    true = labels.copy()
    for i, t in flipped.items():
        true[i] = t
    probs = rng.dirichlet(np.ones(3) * 0.3, len(labels)) * 0.2
    probs[np.arange(len(labels)), true] += 0.8
    probs /= probs.sum(1, keepdims=True)
    for i, t in flipped.items():  # sure of the true class: past any per-class threshold cleanlab sets
        probs[i] = np.full(3, 0.02)
        probs[i, t] = 0.96
    return probs


def test_flipped_images_are_found_most_suspect_first():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    flipped = {3: 1, 40: 2, 75: 0}
    probs = _confident(labels, flipped, rng)
    probs[40] = [0.01, 0.01, 0.98]  # the surest mistake ranks first
    ids = [f"{NAMES[c]}/{i}.png" for i, c in enumerate(labels)]
    issues = find_issues(labels, probs, ids, NAMES)
    assert set(flipped) <= {ids.index(i) for i in issues["id"]}
    assert issues.iloc[0]["id"] == ids[40]
    assert issues.iloc[0][["given_class", "suggested_class"]].tolist() == ["dog", "fox"]
    assert issues["self_confidence"].is_monotonic_increasing
    assert issues["rank"].tolist() == list(range(1, len(issues) + 1))
    assert issues.iloc[0]["source_file"] == ids[40]


def test_generated_ids_have_no_source_file():
    labels = np.repeat([0, 1], 10)
    probs = np.eye(2)[1 - labels] * 0.9 + 0.05
    issues = find_issues(labels, probs, [f"synthetic/{i:05d}" for i in range(20)], ["a", "b"])
    assert len(issues) and (issues["source_file"] == "").all()


def test_duplicates_across_classes_join_the_table_once():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.full((6, 3), 1 / 3)
    ids = [f"img{i}" for i in range(6)]
    issues = find_issues(labels, np.eye(3)[[0, 1, 1, 1, 2, 2]] * 0.9 + 0.1 / 3, ids, NAMES)
    assert issues["id"].tolist() == ["img1"]
    duplicates = pd.DataFrame({"group": [0, 0, 1, 1], "id": ["img1", "img2", "img4", "img5"],
                               "label": [0, 1, 2, 2], "class_name": ["cat", "dog", "fox", "fox"],
                               "across_classes": [True, True, False, False]})
    joined = duplicate_issues(issues, duplicates, labels, probs, ids, NAMES)
    assert joined["id"].tolist() == ["img1", "img2"]
    assert joined.loc[0, "reason"] == "cleanlab; exact duplicate across classes"
    assert joined.loc[1, ["reason", "given_class", "suggested_class", "rank"]].tolist() == [
        "exact duplicate across classes", "dog", "cat", 2]


def test_a_duplicate_the_dataset_lacks_is_named():
    duplicates = pd.DataFrame({"group": [0, 0], "id": ["img0", "gone"], "label": [0, 1],
                               "class_name": ["cat", "dog"], "across_classes": [True, True]})
    empty = find_issues(np.array([], dtype=int), np.zeros((0, 3)), [], NAMES)
    with pytest.raises(ValueError, match=r"names image 'gone'.*pipelines=data"):
        duplicate_issues(empty, duplicates, np.array([0]), np.ones((1, 3)) / 3, ["img0"], NAMES)


def test_score_against_noise_counts_hits():
    score = score_against_noise(["a", "b", "c", "d"], ["b", "d", "e"])
    assert score == {"flagged": 4, "flipped": 3, "true_positives": 2, "precision": 0.5, "recall": pytest.approx(2 / 3)}
    assert score_against_noise([], ["x"])["precision"] == 0.0


def test_the_trained_models_training_dynamics_are_joined_to_the_suspects():
    from classwise.data.label_fixes import fixes_template
    from classwise.diagnosis import join_training_dynamics

    issues = pd.DataFrame({"id": ["a", "b", "c"], "reason": "cleanlab", "given_class": "cat",
                           "suggested_class": "dog", "self_confidence": [0.1, 0.2, 0.3]})
    dynamics = pd.DataFrame({"id": ["b", "c", "z"], "aum": [-2.5, 0.4, -3.0], "flagged": [True, False, True]})
    joined = join_training_dynamics(issues, dynamics)
    assert joined["dynamics_agree"].tolist() == [False, True, False]  # a: not trained on (a val or test image)
    assert np.isnan(joined["training_aum"][0]) and joined["training_aum"][1] == -2.5
    template = fixes_template(joined.sort_values("dynamics_agree", ascending=False, kind="stable"))
    assert template["id"].tolist() == ["b", "a", "c"]
    assert "training dynamics agree (AUM -2.50)" in template["note"].iloc[0]
    without = join_training_dynamics(issues, None)
    assert not without["dynamics_agree"].any() and without["training_aum"].isna().all()
