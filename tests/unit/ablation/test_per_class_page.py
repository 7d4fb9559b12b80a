"""The ladder per class: F1 by step, the noise rule, and the page."""

import pandas as pd
import pytest

from classwise.ablation.per_class import ablation_page, f1_by_step, noise_margin, step_changes
from classwise.ablation.summary import StepOutcome, summary_table


def _outcome(step, f1, support=10, status="FINISHED"):
    per_class = None if f1 is None else pd.DataFrame(
        {"subset": "val", "class": list(f1), "f1": list(f1.values()), "support": support})
    return StepOutcome(step, f"change {step}", status, 1.0, f"run-{step}", per_class=per_class)


def test_the_noise_margin_shrinks_with_the_number_of_images():
    assert noise_margin(10) == pytest.approx(0.447, abs=1e-3)
    assert noise_margin(50) == pytest.approx(0.2)
    assert noise_margin(0) == float("inf")


def test_a_class_is_helped_or_hurt_only_past_its_margin_and_a_failed_step_is_skipped():
    outcomes = [_outcome("base", {"a": 0.2, "b": 0.9, "c": 0.1}),
                _outcome("broken", None, status="FAILED"),
                _outcome("better", {"a": 0.8, "b": 0.3, "c": 0.3})]
    table, support = f1_by_step(outcomes)
    assert list(table.columns) == ["base", "better"] and support.to_dict() == {"c": 10, "a": 10, "b": 10}
    assert table.index.tolist() == ["c", "a", "b"]  # weakest on average first
    (change,) = step_changes(table, support)
    assert change["against"] == "base"
    assert change["helped"] == {"a": 0.6} and change["hurt"] == {"b": -0.6}  # c moved 0.2 < 0.447


def test_the_page_holds_the_heatmap_the_groups_and_each_steps_classes():
    outcomes = [_outcome("base", {"a": 0.2, "b": 0.9}), _outcome("better", {"a": 0.8, "b": 0.9})]
    page = ablation_page("Ablation x", "a tiny ladder checks the mechanics only", outcomes, summary_table(outcomes))
    assert '<p class="muted">a tiny ladder checks the mechanics only</p>' in page
    assert 'id="heatmap"' in page and "data:image/png;base64," in page
    assert "<b>better</b> against base: helped a (+0.60); hurt none." in page
    assert "<th>test tail top1</th>" in page and "<td>change better</td>" in page  # both tables
