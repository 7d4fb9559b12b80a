"""The diagnose pipeline in process, scored against known label flips (a SequentialRunner, memory datasets)."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from classwise.framework.datasets import OptionalDataset
from classwise.pipeline_registry import register_pipelines
from classwise.pipelines.data.nodes import (
    LABEL_NOISE_COLUMNS,
    compute_normalization_stats,
    report_duplicate_images,
    split_dataset,
)
from classwise.data.sources.synthetic import load_synthetic
from tests.integration.pipelines.test_pipelines import KeptDataset

NOISE_RATE = 0.1
# Small enough for a CPU test, learnable enough that the fold models are mostly right (~80% held out).
RECIPE = {"model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 6, "batch_size": 32, "lr": 0.05,
          "milestones": [5], "augment": "none", "device": "cpu", "progress": False, "checkpoint_dir": None}


@pytest.fixture(scope="session")  # built once a worker: xdist may run other modules between these tests
def noisy_run():
    source = load_synthetic(seed=0, classes=10, images=1200, smallest=60, largest=200, similar_pairs=0,
                            noise_rate=NOISE_RATE)
    data = source.data
    split = split_dataset(data, {"val_per_class": 10, "test_per_class": 10})
    kept = ["label_issues", "class_diagnosis", "diagnose_metrics", "oof_predictions", "oof_f1_size_correlation",
            "report_page", "data_issues", "audit_metrics"]
    catalog = DataCatalog({
        "dataset": MemoryDataset(data),
        "split": MemoryDataset(split),
        "normalization_stats": MemoryDataset(compute_normalization_stats(data, split, {})),
        "duplicate_images": MemoryDataset(report_duplicate_images(data)),
        "label_noise": MemoryDataset(pd.DataFrame(source.label_noise, columns=LABEL_NOISE_COLUMNS)),
        "params:diagnose": MemoryDataset({"folds": 4, "recipe": RECIPE, "bootstrap_resamples": 200}),
        "params:evaluate": MemoryDataset({}),
        # No trained model has been evaluated on this data: the page says so instead of failing.
        **{f"saved_{name}": OptionalDataset({"type": "MemoryDataset"})
           for name in ("model", "metrics", "per_class_report", "f1_size_correlation", "predictions",
                        "training_dynamics")},
        **{name: KeptDataset() for name in kept},
    })
    SequentialRunner().run(register_pipelines()["diagnose"], catalog)
    return {name: catalog.load(name) for name in kept}, source


def test_flagged_images_are_the_flipped_ones_far_above_chance(noisy_run):
    outputs, source = noisy_run
    metrics = {name: v["value"] for name, v in outputs["diagnose_metrics"].items()}
    assert metrics["noise_flipped"] == len(source.label_noise) > 0
    # Flagging at random would score a precision equal to the noise rate.
    assert metrics["noise_precision"] >= 3 * NOISE_RATE
    assert metrics["noise_recall"] >= 0.5
    flagged = set(outputs["label_issues"]["id"])
    flipped = {row["id"] for row in source.label_noise}
    assert metrics["noise_precision"] == pytest.approx(len(flagged & flipped) / len(flagged))


def test_without_an_evaluated_model_the_report_page_says_what_to_run(noisy_run):
    outputs, _ = noisy_run
    assert "No trained model has been evaluated on this data yet: run <code>kedro run</code>" in outputs["report_page"]


def test_every_image_gets_one_held_out_prediction_and_every_class_a_row(noisy_run):
    outputs, source = noisy_run
    oof = outputs["oof_predictions"]
    assert len(oof) == len(source.data) and oof["id"].is_unique
    assert sorted(oof["fold"].unique()) == [0, 1, 2, 3]
    table = outputs["class_diagnosis"]
    assert sorted(table["class"]) == source.data.class_names
    weak = table["weak_on_val"] | table["weak_on_oof"]
    assert not weak.iloc[weak.sum():].any()  # weak classes first
    assert set(outputs["oof_f1_size_correlation"]) == {"val", "out_of_fold"}


def test_the_data_audit_runs_on_the_same_folds(noisy_run):
    outputs, source = noisy_run
    audit, counts = outputs["data_issues"], outputs["audit_metrics"]
    assert set(audit["issue"]) <= {"label", "near_duplicate", "outlier"}
    assert set(audit["id"]) <= set(source.data.ids)
    assert counts["label_issues"]["value"] == (audit["issue"] == "label").sum() > 0
    flipped = {row["id"] for row in source.label_noise}
    labelled = set(audit.loc[audit["issue"] == "label", "id"])
    assert len(labelled & flipped) / len(labelled) >= 3 * NOISE_RATE  # Datalab's label issues, far above chance


def test_diagnose_is_its_own_pipeline_not_part_of_train():
    pipelines = register_pipelines()
    diagnose = {n.name for n in pipelines["diagnose"].nodes}
    assert diagnose == {"predict_out_of_fold", "audit_data", "find_label_issues", "diagnose_classes",
                        "summarize_diagnosis", "refresh_report_page"}
    assert not diagnose & {n.name for n in pipelines["train"].nodes}
    assert pipelines["diagnose"].inputs() >= {"dataset", "split", "normalization_stats"}
