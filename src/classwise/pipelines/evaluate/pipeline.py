"""Evaluation and reports from a saved model and a saved split; no training."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_per_class_report, compute_metrics, correlate_f1_with_class_size, predict


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict,
                ["model", "dataset", "split", "normalization_stats", "params:evaluate"],
                "predictions",
                name="predict",
            ),
            Node(compute_metrics, ["predictions", "training_history"], ["metrics", "headline_metrics"],
                 name="compute_metrics"),
            Node(build_per_class_report, ["predictions", "split"], "per_class_report", name="build_per_class_report"),
            Node(
                correlate_f1_with_class_size,
                ["per_class_report", "params:evaluate"],
                "f1_size_correlation",
                name="correlate_f1_with_class_size",
            ),
        ]
    )
