"""The training-dynamics table: lowest AUM first, AUM < 0 flagged, scored against known flips, drawn."""

import numpy as np
import pandas as pd
import pytest

from classwise.diagnosis.dynamics import dynamics_figure, dynamics_summary, dynamics_table


def _table(threshold=0.0):
    dynamics = {
        "observations": np.array([3, 3, 0, 3, 3]),
        "aum": np.array([1.5, -0.4, np.nan, -2.0, 0.0]),
        "confidence": np.array([0.9, 0.3, np.nan, 0.1, 0.5]),
        "variability": np.array([0.05, 0.2, np.nan, 0.03, 0.3]),
    }
    return dynamics_table(["a", "b", "c", "d", "e"], np.array([0, 1, 1, 0, 1]), ["cat", "dog"], dynamics, threshold)


def test_lowest_margin_first_negative_margins_flagged_unobserved_last():
    table = _table()
    assert table["id"].tolist() == ["d", "b", "e", "a", "c"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table["flagged"].tolist() == [True, True, False, False, False]
    assert table.loc[table["id"] == "d", "given_class"].item() == "cat"
    assert _table(-1.5)["flagged"].tolist() == [True, False, False, False, False]  # the default cut


def test_summary_scores_the_flags_and_the_top_n_against_flips_among_the_training_images():
    noise = pd.DataFrame({"id": ["d", "e", "held-out-image"], "given": [0, 1, 0], "true": [1, 0, 1]})
    values = dynamics_summary(_table(), noise)
    assert values["flagged"] == 2 and values["observed"] == 4 and values["images"] == 5
    assert values["noise_flipped"] == 2  # the flip outside the training images is not counted
    assert values["noise_precision"] == pytest.approx(0.5) and values["noise_recall"] == pytest.approx(0.5)
    assert values["noise_top_n_precision"] == pytest.approx(0.5)  # top 2 by AUM: d (a flip), b (not)
    assert "noise_precision" not in dynamics_summary(_table(), noise.iloc[:0])


def test_the_figure_names_the_flagged_count():
    fig = dynamics_figure(_table(), 0.0, {"d"})
    assert "2 flagged" in fig._suptitle.get_text()
    assert len(fig.axes) == 2
