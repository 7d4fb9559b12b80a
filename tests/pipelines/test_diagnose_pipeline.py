"""The diagnose pipeline: scored against known label flips in-process, and once through `kedro run`."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from classwise.pipeline_registry import register_pipelines
from classwise.pipelines.data.nodes import (
    LABEL_NOISE_COLUMNS,
    compute_normalization_stats,
    report_duplicate_images,
    split_dataset,
)
from classwise.data.sources.synthetic import load_synthetic
from tests.conftest import kedro
from tests.pipelines.test_pipelines import KeptDataset

NOISE_RATE = 0.1
# Small enough for a CPU test, learnable enough that the fold models are mostly right (~80% held out).
RECIPE = {"model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 6, "batch_size": 32, "lr": 0.05,
          "milestones": [5], "augment": "none", "device": "cpu", "progress": False, "checkpoint_dir": None}


@pytest.fixture(scope="module")
def noisy_run():
    source = load_synthetic(seed=0, classes=10, images=1200, smallest=60, largest=200, similar_pairs=0,
                            noise_rate=NOISE_RATE)
    data = source.data
    split = split_dataset(data, {"val_per_class": 10, "test_per_class": 10})
    kept = ["label_issues", "class_diagnosis", "diagnose_metrics", "oof_predictions", "oof_f1_size_correlation"]
    catalog = DataCatalog({
        "dataset": MemoryDataset(data),
        "split": MemoryDataset(split),
        "normalization_stats": MemoryDataset(compute_normalization_stats(data, split, {})),
        "duplicate_images": MemoryDataset(report_duplicate_images(data)),
        "label_noise": MemoryDataset(pd.DataFrame(source.label_noise, columns=LABEL_NOISE_COLUMNS)),
        "params:diagnose": MemoryDataset({"folds": 4, "recipe": RECIPE, "bootstrap_resamples": 200}),
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


def test_diagnose_is_its_own_pipeline_not_part_of_train():
    pipelines = register_pipelines()
    diagnose = {n.name for n in pipelines["diagnose"].nodes}
    assert diagnose == {"predict_out_of_fold", "find_label_issues", "diagnose_classes", "summarize_diagnosis"}
    assert not diagnose & {n.name for n in pipelines["train"].nodes}
    assert pipelines["diagnose"].inputs() >= {"dataset", "split", "normalization_stats"}


TINY = ",".join(["diagnose.folds=2", "diagnose.recipe.epochs=1", "diagnose.recipe.model_options.width=4",
                 "diagnose.recipe.milestones=[]", "diagnose.recipe.progress=false",
                 "diagnose.bootstrap_resamples=100"])


def test_kedro_run_diagnose_needs_a_saved_split_then_writes_every_report(project_copy):
    proc = kedro(project_copy, "run", "--pipelines=diagnose", f"--params={TINY}")
    assert proc.returncode != 0
    assert "reads the saved dataset 'dataset' (and 'duplicate_images'" in " ".join(proc.stderr.split())
    assert "kedro run --pipelines=data' first" in " ".join(proc.stderr.split())

    proc = kedro(project_copy, "run", "--pipelines=data,diagnose", f"--params={TINY}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = project_copy / "data/08_reporting"
    for name in ["label_issues.csv", "label_issues.png", "class_diagnosis.csv", "class_diagnosis.png",
                 "oof_f1_size_correlation.json"]:
        assert (reports / name).is_file(), name
    issues = pd.read_csv(reports / "label_issues.csv")
    assert list(issues.columns[:4]) == ["rank", "id", "source_file", "label"]
    correlation = json.loads((reports / "oof_f1_size_correlation.json").read_text())
    assert correlation["out_of_fold"]["n_classes"] == 10

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert [r.info.status for r in runs] == ["FINISHED"]  # the refused run opened none
    metrics = runs[0].data.metrics
    assert metrics["diagnose.label_issues"] == len(issues)
    assert "diagnose.oof_macro_f1" in metrics and "diagnose.fold2.val_accuracy" in metrics
    assert "diagnose.noise_precision" not in metrics  # the digits have no flipped labels
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "diagnose")}
    assert {"diagnose/label_issues.csv", "diagnose/class_diagnosis.png"} <= artifacts
