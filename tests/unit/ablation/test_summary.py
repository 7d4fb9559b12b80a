"""The summary table, its Markdown and its bar chart, from step outcomes."""

import math

import matplotlib.pyplot as plt

from classwise.ablation import StepOutcome, summary_markdown, summary_plot, summary_table


def outcomes():
    metrics = {
        "train": {"top1": 0.97, "loss": 0.1},
        "val": {"top1": 0.64, "macro_f1": 0.61},
        "test": {"top1": 0.62, "macro_f1": 0.6},
    }
    f1_size = {"pearson_r": 0.16, "f1_threshold": 0.5, "classes_below_threshold": [{"class": "a"}, {"class": "b"}]}
    return [
        StepOutcome("baseline", "ResNet-18", "FINISHED", 12.34, "r1", metrics, f1_size),
        StepOutcome("broken", "a | pipe", "FAILED", 0.5, "r2", error="ValueError: Unknown model 'x'"),
    ]


def test_a_failed_step_keeps_its_row_with_empty_metrics():
    table = summary_table(outcomes())
    assert table["step"].tolist() == ["baseline", "broken"]
    first, failed = table.iloc[0], table.iloc[1]
    assert (first["train_accuracy"], first["val_accuracy"], first["test_accuracy"]) == (0.97, 0.64, 0.62)
    assert first["val_macro_f1"] == 0.61 and first["classes_under_f1"] == 2 and first["f1_size_r"] == 0.16
    assert first["wall_seconds"] == 12.3 and first["status"] == "FINISHED"
    assert failed["status"] == "FAILED" and math.isnan(failed["val_accuracy"]) and "Unknown model" in failed["error"]


def test_markdown_is_one_table_row_a_step_in_percent():
    text = summary_markdown(summary_table(outcomes()), "Ablation x", 0.5)
    lines = text.splitlines()
    assert lines[0] == "# Ablation x"
    assert "classes under F1 0.5" in lines[2]
    baseline = next(line for line in lines if line.startswith("| baseline"))
    assert "| 97.0 | 64.0 | 62.0 | 0.610 |" in baseline and baseline.endswith("| 12.3 | FINISHED |")
    broken = next(line for line in lines if line.startswith("| broken"))
    assert "a \\| pipe" in broken and "FAILED: ValueError: Unknown model 'x'" in broken
    assert broken.count("|") == lines[2].count("|") + 1  # the escaped pipe is the only extra


def test_bar_chart_has_three_bars_a_step_and_labels_failures():
    fig = summary_plot(summary_table(outcomes()), "Ablation x")
    try:
        ax = fig.axes[0]
        assert len(ax.patches) == 3 * 2
        assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "broken"]
        assert "FAILED" in [t.get_text() for t in ax.texts]
    finally:
        plt.close(fig)
