"""Evaluation and reports from a saved model and a saved split; no training."""

from kedro.pipeline import Node, Pipeline

from classwise.pipelines.evaluate.nodes import (
    build_per_class_report,
    build_report_page,
    compute_metrics,
    correlate_f1_with_class_size,
    plot_f1_vs_class_size,
    plot_misclassified,
    plot_training_curves,
    predict,
    summarize_confusion,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict,
                ["model", "dataset", "split", "normalization_stats", "params:evaluate"],
                "predictions",
                name="predict",
            ),
            Node(compute_metrics, ["predictions", "training_history", "split", "params:evaluate"],
                 ["metrics", "headline_metrics"],
                 name="compute_metrics"),
            Node(
                build_per_class_report,
                ["predictions", "split", "params:evaluate"],
                ["per_class_report", "per_class_metrics"],
                name="build_per_class_report",
            ),
            Node(
                correlate_f1_with_class_size,
                ["per_class_report", "params:evaluate"],
                ["f1_size_correlation", "f1_size_metrics"],
                name="correlate_f1_with_class_size",
            ),
            Node(
                summarize_confusion,
                ["predictions", "split", "params:evaluate"],
                ["confusion_matrix", "top_confusions", "confusion_matrix_plot"],
                name="summarize_confusion",
            ),
            Node(
                plot_f1_vs_class_size,
                ["per_class_report", "f1_size_correlation"],
                "f1_vs_class_size_plot",
                name="plot_f1_vs_class_size",
            ),
            Node(
                build_report_page,
                ["model", "metrics", "per_class_report", "f1_size_correlation", "predictions", "dataset", "split",
                 "params:evaluate", "saved_class_diagnosis", "saved_label_issues"],
                "report_page",
                name="build_report_page",
            ),
            Node(plot_training_curves, "training_history", "training_curves_plot", name="plot_training_curves"),
            Node(
                plot_misclassified,
                ["predictions", "dataset", "params:evaluate"],
                "misclassified_plot",
                name="plot_misclassified",
            ),
        ]
    )
