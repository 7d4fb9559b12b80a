"""After training the demo in a throwaway copy of the project: the evaluate
pipeline alone rebuilds every report and figure from the saved model and split, the reports
agree with predictions.parquet, the notebook runs headless, and `kedro viz build` draws the DAG."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from PIL import Image
from scipy import stats
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from tests.conftest import PROJECT_ROOT, kedro
from tests.e2e.conftest import copy_trained

TINY = "evaluate.bootstrap_resamples=500"
REPORTS = "data/08_reporting"
FIGURES = ["class_distribution.png", "f1_vs_class_size.png", "confusion_matrix.png", "training_curves.png",
           "misclassified.png"]
REBUILT = ["metrics.json", "per_class_report.csv", "f1_size_correlation.json", "confusion_matrix.csv",
           "top_confusions.csv", *FIGURES[1:]]


@pytest.fixture(scope="session")  # built once a worker: xdist may run other modules between these tests
def trained(trained_project, tmp_path_factory) -> Path:
    """A copy of the session's trained project without the reports the evaluate pipeline makes."""
    project, proc = trained_project
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = copy_trained(project, tmp_path_factory.mktemp("evaluate") / "project")
    for name in ["07_model_output/predictions.parquet", *(f"08_reporting/{n}" for n in REBUILT)]:
        (root / "data" / name).unlink()
    return root


@pytest.fixture(scope="session")  # built once a worker: xdist may run other modules between these tests
def evaluated(trained: Path) -> tuple[Path, subprocess.CompletedProcess, bytes]:
    """The evaluate pipeline alone, from the saved model and split."""
    model = (trained / "data/06_models/model.pt").read_bytes()
    assert not (trained / REPORTS / "metrics.json").exists()
    proc = kedro(trained, "run", "--pipelines=evaluate", f"--params={TINY}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return trained, proc, model


def test_evaluate_pipeline_rebuilds_every_report_without_training(evaluated):
    root, proc, model_before = evaluated
    for name in ["07_model_output/predictions.parquet", *(f"08_reporting/{n}" for n in REBUILT)]:
        assert (root / "data" / name).is_file(), name
    log = proc.stdout + proc.stderr
    # Evaluation ran (its metrics and the closing summary are in the log), training did not.
    assert "test: top-1" in log and any("test  top-1" in line for line in log.splitlines()[-20:])
    assert "epoch 1/" not in log and "Training on" not in log
    assert (root / "data/06_models/model.pt").read_bytes() == model_before

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classwise")
    last = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert last.info.status == "FINISHED"
    artifacts = {a.path for d in ("reports", "figures") for a in client.list_artifacts(last.info.run_id, d)}
    assert {f"figures/{f}" for f in FIGURES[1:]} <= artifacts
    assert {"reports/top_confusions.csv", "reports/confusion_matrix.csv",
            "reports/f1_size_correlation.json"} <= artifacts
    metrics = json.loads((root / REPORTS / "metrics.json").read_text())
    assert last.data.metrics["final/test_macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
    assert "final/classes_below_f1_threshold" in last.data.metrics


def test_metrics_cover_train_val_test(evaluated):
    metrics = json.loads((evaluated[0] / REPORTS / "metrics.json").read_text())
    history = pd.read_csv(evaluated[0] / "data/07_model_output/training_history.csv")
    assert metrics["train"]["top1"] == pytest.approx(history["train_accuracy"].iloc[-1])
    for subset in ("train", "val", "test"):
        assert {"top5", "macro_f1", "balanced_accuracy"} <= set(metrics[subset])
        assert 0 <= metrics[subset]["macro_f1"] <= 1


def test_per_class_report_matches_scikit_learn_on_the_predictions(evaluated):
    root = evaluated[0]
    predictions = pd.read_parquet(root / "data/07_model_output/predictions.parquet")
    report = pd.read_csv(root / REPORTS / "per_class_report.csv")
    num_classes = report["class"].nunique()
    assert set(report["subset"]) == {"train", "val", "test"}
    for subset in ("val", "test"):
        rows = predictions[predictions["subset"] == subset]
        p, r, f, s = precision_recall_fscore_support(
            rows["label"], rows["predicted"], labels=np.arange(num_classes), zero_division=0)
        part = report[report["subset"] == subset]
        assert part["f1"].is_monotonic_increasing  # weakest class first
        part = part.sort_values("class")  # the digit classes "0".."9": label order
        np.testing.assert_allclose(part["precision"], p, atol=5e-5)  # rounded to four places
        np.testing.assert_allclose(part["recall"], r, atol=5e-5)
        np.testing.assert_allclose(part["f1"], f, atol=5e-5)
        assert part["support"].tolist() == s.tolist()


def test_correlation_json_matches_the_report(evaluated):
    root = evaluated[0]
    corr = json.loads((root / REPORTS / "f1_size_correlation.json").read_text())
    report = pd.read_csv(root / REPORTS / "per_class_report.csv")
    val = report[report["subset"] == corr["subset"]]
    assert corr["n_classes"] == len(val)
    low = val[val["f1"] < corr["f1_threshold"]]
    assert sorted(c["class"] for c in corr["classes_below_threshold"]) == sorted(low["class"].astype(str))
    if val["f1"].nunique() > 1:
        assert corr["pearson_r"] == pytest.approx(stats.pearsonr(val["train_count"], val["f1"]).statistic)
        assert corr["spearman_rho"] == pytest.approx(stats.spearmanr(val["train_count"], val["f1"]).statistic)
        assert corr["pearson_r_ci_low"] <= corr["pearson_r"] <= corr["pearson_r_ci_high"]
        assert corr["bootstrap_resamples"] == 500
    else:  # every class at the same F1: undefined, and said so
        assert corr["pearson_r"] is None and corr["pearson_r_ci_low"] is None and not corr["defined"]


def test_confusions_match_scikit_learn_on_the_predictions(evaluated):
    root = evaluated[0]
    predictions = pd.read_parquet(root / "data/07_model_output/predictions.parquet")
    test = predictions[predictions["subset"] == "test"]
    table = pd.read_csv(root / REPORTS / "confusion_matrix.csv")
    n = int(table["true_label"].max()) + 1
    expected = confusion_matrix(test["label"], test["predicted"], labels=np.arange(n))
    assert table.sort_values(["true_label", "predicted_label"])["count"].tolist() == expected.ravel().tolist()
    top = pd.read_csv(root / REPORTS / "top_confusions.csv")
    assert list(top.columns) == ["true", "predicted", "rate", "count"]
    off = expected * (1 - np.eye(n, dtype=int))
    assert len(top) == min(20, int((off > 0).sum()))
    if len(top):
        assert top["rate"].is_monotonic_decreasing
        assert top["rate"].iloc[0] == pytest.approx((off / expected.sum(axis=1, keepdims=True)).max())


def test_each_figure_is_a_real_png_of_plausible_size(evaluated):
    for name in FIGURES:
        path = evaluated[0] / REPORTS / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width >= 400 and image.height >= 200, (name, image.size)
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 10, name  # not a blank or single-colour canvas
        assert 10_000 < path.stat().st_size < 5_000_000, name


def test_notebook_runs_headless_against_the_demo_outputs(evaluated):
    root = evaluated[0]
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "reading_a_run.ipynb", as_version=4)
    (root / "notebooks").mkdir(exist_ok=True)
    # The kernel starts in the copy's notebooks/ folder, so the extension finds the copy.
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 2  # class distribution, F1 vs size
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    defined = json.loads((root / REPORTS / "f1_size_correlation.json").read_text())["defined"]
    assert "10 classes" in text and ("Pearson r =" in text if defined else "undefined" in text)


def test_kedro_viz_build_holds_the_pipeline_nodes_and_layers(trained):
    proc = kedro(trained, "viz", "build")
    assert proc.returncode == 0, proc.stderr[-3000:]
    main = json.loads((trained / "build/api/main").read_text())
    tasks = {n["name"] for n in main["nodes"] if n["type"] == "task"}
    assert {"ingest_images", "split_dataset", "train_model", "predict", "compute_metrics",
            "build_per_class_report", "correlate_f1_with_class_size", "summarize_confusion",
            "plot_f1_vs_class_size", "plot_training_curves", "plot_misclassified"} <= tasks
    # Kedro's layer order, left to right; every one of ours shows, and in that order.
    order = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]
    assert set(main["layers"]) >= set(order) - {"model_input"}
    assert main["layers"] == [layer for layer in order if layer in main["layers"]]
    data = [n for n in main["nodes"] if n["type"] == "data"]
    assert all(n.get("layer") for n in data), [n["name"] for n in data if not n.get("layer")]
    assert {p["id"] for p in main["pipelines"]} >= {"__default__", "data", "train", "evaluate"}
