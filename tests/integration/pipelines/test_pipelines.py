"""Pipeline slices on an in-memory catalog, and the nodes' boundaries."""

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from classwise.core.errors import ConfigError
from classwise.framework.datasets import OptionalDataset
from classwise.pipeline_registry import register_pipelines
from classwise.pipelines.data.nodes import ingest_images, summarize_class_distribution, validate_dataset
from classwise.pipelines.evaluate.nodes import build_per_class_report, compute_metrics

TINY_TRAIN = {
    "model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 1, "batch_size": 32,
    "lr": 0.05, "augment": "none", "device": "cpu", "progress": False, "milestones": [],
    "weight_decay": 0.0, "label_smoothing": 0.0, "oversample": False, "cutmix_p": 0.0,
}
SPLIT = {"val_per_class": 3, "test_per_class": 3, "seed": 0}


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so a test can read it after the run."""

    def _release(self) -> None:
        pass


def _catalog(*kept: str, **data) -> DataCatalog:
    datasets = {name: MemoryDataset(value) for name, value in data.items()}
    datasets.update({name: KeptDataset() for name in kept})
    # No diagnosis saved: report.html is built without one.
    datasets.update({name: OptionalDataset({"type": "MemoryDataset"})
                     for name in ("saved_class_diagnosis", "saved_label_issues")})
    return DataCatalog(datasets)


def test_registry_has_data_train_evaluate_and_default_is_train():
    pipelines = register_pipelines()
    assert {"data", "train", "evaluate", "__default__"} <= set(pipelines)
    assert set(pipelines["__default__"].all_outputs()) == set(pipelines["train"].all_outputs())
    names = {n.name for n in pipelines["train"].nodes}
    assert {"ingest_images", "validate_dataset", "split_dataset", "compute_normalization_stats",
            "train_model", "predict", "compute_metrics", "build_per_class_report",
            "correlate_f1_with_class_size", "summarize_class_distribution"} <= names
    assert names == {n.name for n in pipelines["data"].nodes + pipelines["evaluate"].nodes} | {
        "train_model", "summarize_training_dynamics", "log_mlflow_model"}


def test_whole_train_pipeline_on_an_in_memory_catalog(small_images):
    pipeline = register_pipelines()["train"].from_nodes("split_dataset")
    catalog = _catalog("per_class_report", "metrics", "predictions", "f1_size_correlation", "report_page",
                       "training_dynamics", "dynamics_metrics", **{
        "dataset": small_images,
        "params:split": SPLIT,
        "params:normalization": {"mode": "computed"},
        "params:train": TINY_TRAIN,
        "params:evaluate": {"device": "cpu"},
        "params:evaluate.aum_threshold": -1.5,
        "label_noise": pd.DataFrame({"id": [small_images.ids[0]], "given": [0], "true": [1]}),
        "params:predict": {},
        "params:data.image_folder.background": [255, 255, 255],
    })
    SequentialRunner().run(pipeline, catalog)
    report = catalog["per_class_report"].load()
    assert set(report["subset"]) == {"train", "val", "test"} and len(report) == 3 * small_images.num_classes
    assert report["subset"].tolist()[:small_images.num_classes] == ["val"] * small_images.num_classes
    assert "<h2>Every class" in catalog["report_page"].load()
    assert report.loc[report["subset"] == "val", "support"].tolist() == [3] * 4
    metrics = catalog["metrics"].load()
    assert set(metrics) == {"train", "val", "test", "groups"} and 0 <= metrics["test"]["top1"] <= 1
    assert set(metrics["groups"]) == {"head", "medium", "tail"} and "tail_top1" in metrics["test"]
    predictions = catalog["predictions"].load()
    assert len(predictions) == len(small_images)
    corr = catalog["f1_size_correlation"].load()
    assert corr["n_classes"] == small_images.num_classes and corr["subset"] == "val"
    dynamics = catalog["training_dynamics"].load()
    assert set(dynamics["id"]) == set(predictions.loc[predictions["subset"] == "train", "id"])
    assert catalog["dynamics_metrics"].load()["images"]["value"] == len(dynamics)


def test_data_slice_ingests_validates_splits(tmp_path):
    pipeline = register_pipelines()["data"]
    catalog = _catalog("split", "dataset", "normalization_stats", "class_distribution", **{
        "params:data": {"source": "digits"},
        "params:split": SPLIT,
        "params:normalization": {"mode": "fixed"},
    })
    SequentialRunner().run(pipeline, catalog)
    split = catalog["split"].load()
    dataset = catalog["dataset"].load()
    assert split["id"].tolist() == dataset.ids
    assert catalog["normalization_stats"].load()["mean"] == [0.49] * 3
    distribution = catalog["class_distribution"].load()
    assert distribution["total"].sum() == len(dataset)


def test_ingest_rejects_unknown_parameter():
    with pytest.raises(ConfigError, match="Unknown parameter 'data.sorce'"):
        ingest_images({"sorce": "digits"})


def test_validate_refuses_a_single_class(small_images):
    one = small_images.subset(small_images.labels == 0)
    with pytest.raises(ConfigError, match="at least two"):
        validate_dataset(one, SPLIT)


def test_class_distribution_counts_each_subset(small_images):
    split = pd.DataFrame({
        "id": small_images.ids, "label": small_images.labels,
        "class_name": [small_images.class_names[i] for i in small_images.labels],
        "subset": pd.Categorical(["train"] * len(small_images), categories=["train", "val", "test"]),
    })
    table, fig = summarize_class_distribution(split)
    assert table["train"].tolist() == [40, 30, 25, 60] and table["val"].sum() == 0
    assert fig.axes[0].get_title().startswith("Images per class: 155 in 4 classes")


def test_metrics_and_report_agree_with_predictions():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
    predictions = pd.DataFrame({
        "id": list("abcd"), "subset": "test", "label": [0, 1, 1, 1],
        "predicted": probs.argmax(1), "confidence": probs.max(1), "probabilities": list(probs),
    })
    split = pd.DataFrame({"id": list("abcdef"), "label": [0, 1, 1, 1, 0, 1],
                          "class_name": ["x", "y", "y", "y", "x", "y"],
                          "subset": ["test"] * 4 + ["train"] * 2})
    history = pd.DataFrame({"train_accuracy": [0.5, 0.75], "train_loss": [1.0, 0.5]})
    metrics, flat = compute_metrics(predictions, history)
    assert metrics["test"]["top1"] == 0.75 and metrics["train"]["top1"] == 0.75
    assert flat["test_top1"] == {"value": 0.75, "step": 0}
    report, logged = build_per_class_report(predictions, split)
    # Weakest first: x (precision 1/2, F1 0.667), then y (recall 2/3, F1 0.8).
    assert report["class"].tolist() == ["x", "y"] and report["train_count"].tolist() == [1, 1]
    assert report["recall"].tolist() == pytest.approx([1.0, 0.6667])
    assert report["confused_with"].tolist() == ["", "x"] and report["size_rank"].tolist() == [1, 1]
    assert logged["y.test_recall"] == {"value": 0.6667, "step": 0}
