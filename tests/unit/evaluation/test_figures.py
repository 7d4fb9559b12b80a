"""The figures at the seed's scale: 91 classes with long names stay legible and in order."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classwise.evaluation.confusion import confusable_order, confusion_counts, row_normalised
from classwise.evaluation.correlation import f1_size_correlation
from classwise.evaluation.figures import (
    class_distribution_figure,
    confusion_matrix_figure,
    f1_vs_size_figure,
    misclassified_figure,
    training_curves_figure,
)
from classwise.evaluation.metrics import per_class_table

N = 91
NAMES = [f"aquarium_fish_long_name_{i:02d}" for i in range(N)]


def _png(fig) -> Image.Image:
    """Save as the catalog does and return the decoded image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


@pytest.fixture(scope="module")
def seed_like():
    rng = np.random.default_rng(0)
    sizes = rng.integers(126, 506, N)
    labels = np.repeat(np.arange(N), 10)
    predicted = labels.copy()
    wrong = rng.random(len(labels)) < 0.9 * (1 - (sizes[labels] - 126) / 380)
    # Errors go to a neighbour, so that confusable groups exist.
    predicted[wrong] = (labels[wrong] + rng.integers(1, 3, wrong.sum())) % N
    report = per_class_table(labels, predicted, NAMES, sizes, "val")
    return sizes, labels, predicted, report


def test_class_distribution_names_every_class_largest_first(seed_like):
    sizes = seed_like[0]
    table = pd.DataFrame({"class": NAMES, "train": sizes, "val": 10, "test": 10})
    table["total"] = table[["train", "val", "test"]].sum(axis=1)
    fig = class_distribution_figure(table)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == table.sort_values("total", ascending=False)["class"].tolist()
    image = _png(fig)
    assert image.width > 1500  # 91 bars need the width; a 640-px chart would crush the names


def test_f1_vs_size_shows_the_fit_r_and_names_the_weak_classes(seed_like):
    report = seed_like[3]
    corr = f1_size_correlation(report, "val", 0.5, bootstrap_resamples=200)
    assert corr["classes_below_threshold"]
    fig = f1_vs_size_figure(report, corr)
    ax, side = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"Pearson r = {corr['pearson_r']:.2f}" in t and "95% CI" in t for t in legend)
    listed = side.texts[0].get_text()
    weakest = corr["classes_below_threshold"][0]["class"]
    assert f"1. {weakest}" in listed
    assert len(ax.lines) == 2  # threshold and fit
    image = _png(fig)
    assert image.width > 1000 and image.height > 600


def test_f1_vs_size_says_when_the_correlation_is_undefined(seed_like):
    report = seed_like[3].assign(f1=1.0)
    corr = f1_size_correlation(report, "val", 0.5)
    fig = f1_vs_size_figure(report, corr)
    assert "undefined" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 1  # the threshold only, no fit
    _png(fig)


def test_confusion_heatmap_labels_every_class_in_the_given_order(seed_like):
    _, labels, predicted, _ = seed_like
    rates = row_normalised(confusion_counts(labels, predicted, N))
    order = confusable_order(rates)
    fig = confusion_matrix_figure(rates, NAMES, order, "test")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [NAMES[i] for i in order]
    assert [t.get_text() for t in ax.get_xticklabels()] == [NAMES[i] for i in order]
    image = np.asarray(_png(fig).convert("L"))
    assert min(image.shape) > 1500
    # Mostly white: zero cells are blank, not a dark square.
    assert np.mean(image > 240) > 0.6


def test_long_names_are_cut_in_the_middle_so_their_ends_still_differ():
    names = [f"kangaroo_with_a_rather_long_class_name_number_{i:02d}" for i in range(3)]
    fig = confusion_matrix_figure(np.eye(3), names)
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    plt.close(fig)
    assert len(set(ticks)) == 3 and all(len(t) <= 40 and t.endswith(f"_{i:02d}") for i, t in enumerate(ticks))


def test_training_curves_have_loss_accuracy_and_lr_panels():
    history = pd.DataFrame({
        "epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.4, 1.2],
        "train_accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.3, 0.55, 0.5], "lr": [0.1, 0.1, 0.01],
    })
    fig = training_curves_figure(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "learning rate"]
    assert [len(ax.lines) for ax in fig.axes] == [3, 3, 1]  # two curves + best-epoch marker; lr
    assert fig.axes[2].get_yscale() == "log"
    _png(fig)


def test_training_curves_of_a_single_epoch():
    history = pd.DataFrame({"epoch": [1], "train_loss": [2.0], "val_loss": [2.1], "train_accuracy": [0.3],
                            "val_accuracy": [0.3], "lr": [0.1]})
    _png(training_curves_figure(history))


def test_misclassified_grid_titles_each_image_with_true_and_predicted():
    images = np.random.default_rng(0).integers(0, 255, (7, 32, 32, 3), dtype=np.uint8)
    fig = misclassified_figure(images, NAMES[:7], NAMES[10:17], np.linspace(0.9, 0.3, 7), ncols=3)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert len(fig.axes) == 9 and len(titles) == 7
    assert titles[0] == f"true: {NAMES[0]}\npred: {NAMES[10]} (90%)"
    _png(fig)


def test_misclassified_grid_without_mistakes_says_so():
    fig = misclassified_figure(np.zeros((0, 32, 32, 3), np.uint8), [], [], np.zeros(0))
    assert "No misclassified images" in fig.axes[0].texts[0].get_text()
    _png(fig)


def test_training_curves_of_a_run_without_validation_draw_without_a_best_epoch():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_accuracy": [0.5, 0.7],
                            "val_loss": [np.nan, np.nan], "val_accuracy": [np.nan, np.nan], "lr": [0.1, 0.1]})
    fig = training_curves_figure(history)
    try:
        assert not any("best val epoch" in t.get_text() for t in fig.axes[1].get_legend().get_texts())
    finally:
        plt.close(fig)


def test_recall_vs_size_has_a_panel_a_run_coloured_by_group():
    from classwise.evaluation.figures import recall_vs_size_figure

    counts = np.array([10, 50, 100, 200, 300, 400])
    groups = np.array(["tail", "tail", "medium", "medium", "head", "head"])
    fig = recall_vs_size_figure({"a": (counts, np.linspace(0, 1, 6)), "b": (counts, np.full(6, 0.5))}, groups)
    assert len(fig.axes) == 2
    assert [len(c.get_offsets()) for c in fig.axes[0].collections] == [2, 2, 2]
    assert "mean recall 0.50" in fig.axes[1].get_title()
    plt.close(fig)
