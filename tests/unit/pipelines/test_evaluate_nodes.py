"""The evaluate pipeline's nodes at their boundaries, on small hand-made predictions."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.pipelines.evaluate.nodes import (
    EvaluateConfig,
    compute_metrics,
    correlate_f1_with_class_size,
    plot_misclassified,
    summarize_confusion,
)
from classwise.data.sources import LabelledImages

HISTORY = pd.DataFrame({"epoch": [1, 2], "train_accuracy": [0.5, 0.7], "train_loss": [1.0, 0.6]})


def _predictions(subset, labels, predicted, confidence=None, ids=None):
    n = len(labels)
    probs = np.full((n, 3), 0.1, dtype=np.float32)
    probs[np.arange(n), predicted] = 0.8
    return pd.DataFrame({
        "id": ids or [f"{subset}/{i}" for i in range(n)], "subset": subset, "label": labels,
        "predicted": predicted, "confidence": confidence if confidence is not None else probs.max(1),
        "probabilities": list(probs),
    })


def _split(names=("ant", "bee", "cat")):
    return pd.DataFrame({"id": [f"s{i}" for i in range(3)], "label": [0, 1, 2], "class_name": list(names),
                         "subset": "train"})


def test_train_metrics_keep_the_last_epoch_and_add_eval_mode_numbers():
    predictions = pd.concat([
        _predictions("train", [0, 1, 2, 2], [0, 1, 2, 0]),
        _predictions("val", [0, 1, 2], [0, 1, 1]),
    ])
    metrics, flat = compute_metrics(predictions, HISTORY)
    assert list(metrics) == ["train", "val"]
    assert metrics["train"]["top1"] == 0.7 and metrics["train"]["loss"] == 0.6  # as the seed reports it
    assert metrics["train"]["top1_eval"] == 0.75 and metrics["train"]["top5"] == 1.0
    assert {"macro_f1", "balanced_accuracy"} <= set(metrics["train"])
    assert flat["train_top1_eval"] == {"value": 0.75, "step": 0} and "train_n_images" not in flat


def test_without_train_predictions_train_metrics_are_the_last_epoch_only():
    metrics, _ = compute_metrics(_predictions("test", [0, 1], [0, 1]), HISTORY)
    assert metrics["train"] == {"top1": 0.7, "loss": 0.6}


def test_empty_history_is_a_clear_error():
    with pytest.raises(ValueError, match="training_history.csv has no epochs"):
        compute_metrics(_predictions("test", [0], [0]), HISTORY.iloc[:0])


def test_confusion_outputs_of_the_confusion_subset():
    predictions = pd.concat([
        _predictions("test", [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]),
        _predictions("val", [0, 1, 2], [2, 2, 2]),  # must be ignored
    ])
    table, top, fig = summarize_confusion(predictions, _split(), {"confusion_subset": "test"})
    plt.close(fig)
    assert set(table["subset"]) == {"test"} and len(table) == 9
    assert table.groupby("true")["rate"].sum().tolist() == pytest.approx([1, 1, 1])
    assert top[["true", "predicted", "rate", "count"]].values.tolist() == [
        ["ant", "bee", 0.5, 1], ["cat", "ant", 0.5, 1]]


def test_correlation_node_gives_mlflow_metrics_without_nulls():
    report = pd.DataFrame({"subset": "val", "class": list("abcd"), "f1": [1.0] * 4, "train_count": [5, 6, 7, 8]})
    result, flat = correlate_f1_with_class_size(report, {})
    assert result["pearson_r"] is None
    assert flat == {"classes_below_f1_threshold": {"value": 0.0, "step": 0}}
    report["f1"] = [0.2, 0.4, 0.9, 0.8]
    result, flat = correlate_f1_with_class_size(report, {"bootstrap_resamples": 100})
    assert flat["f1_size_pearson_r"]["value"] == pytest.approx(result["pearson_r"])
    assert flat["classes_below_f1_threshold"]["value"] == 2 and "f1_size_pearson_r_ci_low" in flat


def test_misclassified_grid_takes_the_most_confident_mistakes_first():
    images = np.stack([np.full((32, 32, 3), 10 * i, np.uint8) for i in range(5)])
    dataset = LabelledImages(images, np.array([0, 1, 2, 0, 1]), ["ant", "bee", "cat"], [f"x{i}" for i in range(5)])
    predictions = _predictions("test", [0, 1, 2, 0, 1], [1, 1, 0, 2, 0],
                               confidence=np.array([0.4, 0.99, 0.9, 0.7, 0.2]), ids=dataset.ids)
    fig = plot_misclassified(predictions, dataset, {"misclassified_images": 3})
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    shown = [ax.images[0].get_array()[0, 0, 0] for ax in fig.axes if ax.images]
    plt.close(fig)
    assert titles == ["true: cat\npred: ant (90%)", "true: ant\npred: cat (70%)", "true: ant\npred: bee (40%)"]
    assert shown == [20, 30, 0]  # images x2, x3, x0: the pictures match their titles


def test_a_subset_that_was_not_predicted_is_named():
    with pytest.raises(ValueError, match="no 'test' images; add 'test' to 'evaluate.subsets'"):
        summarize_confusion(_predictions("val", [0], [0]), _split(), {})


@pytest.mark.parametrize("params, message", [
    ({"subsets": ["val"], "correlation_subset": "val"}, "'evaluate.confusion_subset' is 'test'"),
    ({"confusion_subset": "holdout"}, "names subset 'holdout'"),
    ({"top_confusions": -1}, "'evaluate.top_confusions' is -1"),
    ({"bootstrap_resamples": "many"}, "'evaluate.bootstrap_resamples' must be int"),
    ({"group_thresholds": [100, 20]}, r"'evaluate.group_thresholds' is \[100, 20\]"),
    ({"logit_adjust_tau": -1.0}, "'evaluate.logit_adjust_tau' is -1.0"),
])
def test_bad_evaluate_parameters_are_one_clear_sentence(params, message):
    with pytest.raises(ConfigError, match=message):
        parse(EvaluateConfig, params, "evaluate")


def test_an_empty_test_subset_is_skipped_with_a_log_line(caplog):
    from classwise.training.lineage import lineage
    from classwise.models import build_model
    from classwise.pipelines.evaluate.nodes import predict
    from classwise.data.split import SplitConfig, split_table
    from tests.conftest import make_images

    data = make_images([10, 10, 10])
    split = split_table(data, SplitConfig(val_per_class=2, test_per_class=0))
    config = {"name": "preact_resnet18", "num_classes": 3, "options": {"width": 4}, **lineage(data, split)}
    model = {"config": config, "state_dict": build_model("preact_resnet18", 3, width=4).state_dict()}
    with caplog.at_level("INFO", logger="classwise.pipelines.evaluate.nodes"):
        predictions = predict(model, data, split, {"mean": [0.5] * 3, "std": [0.25] * 3},
                              {"subsets": ["train", "val"], "confusion_subset": "val", "device": "cpu"})
    assert set(predictions["subset"]) == {"train", "val"}
    with caplog.at_level("INFO", logger="classwise.pipelines.evaluate.nodes"):
        predict(model, data, split, {"mean": [0.5] * 3, "std": [0.25] * 3}, {"device": "cpu"})
    assert "holds no 'test' images" in caplog.text


def test_correlation_on_a_subset_without_images_is_one_sentence():
    report = pd.DataFrame({"subset": ["test"], "class": ["a"], "f1": [1.0], "train_count": [3]})
    with pytest.raises(ValueError, match="holds no 'val' rows .* point evaluate.correlation_subset"):
        correlate_f1_with_class_size(report, {})


def test_metrics_carry_head_medium_tail_and_post_hoc_adjusted_numbers():
    split = pd.DataFrame({"id": [f"s{i}" for i in range(15)], "label": [0] * 12 + [1] * 2 + [2],
                          "class_name": ["ant"] * 12 + ["bee"] * 2 + ["cat"], "subset": "train"})
    predictions = _predictions("test", [0, 0, 1, 2], [0, 0, 1, 0])
    metrics, flat = compute_metrics(predictions, HISTORY, split, {"logit_adjust_tau": 1.0})
    assert metrics["groups"]["tail"] == {"classes": 1, "train_count_min": 1, "train_count_max": 1}
    assert metrics["test"]["head_top1"] == 1.0 and metrics["test"]["tail_top1"] == 0.0
    assert flat["test_tail_top1"] == {"value": 0.0, "step": 0}
    # dividing by the prior (12/15, 2/15, 1/15) makes cat's 0.1 beat ant's 0.8 (1.5 > 1.0): the tail
    # image is now right, and the ant images wrong, at tau 1
    assert metrics["test"]["adjusted_tail_top1"] == 1.0 and metrics["test"]["adjusted_head_top1"] == 0.0
    assert "test_adjusted_top1" in flat
    plain, _ = compute_metrics(predictions, HISTORY, split, {})
    assert not any(k.startswith("adjusted_") for k in plain["test"])
