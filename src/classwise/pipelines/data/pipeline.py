"""Ingest -> validate (+ duplicates report) -> stratified split (+ counts) -> normalisation statistics -> class distribution."""

from kedro.pipeline import Node, Pipeline

from classwise.pipelines.data.nodes import (
    apply_label_fixes,
    compute_normalization_stats,
    count_split,
    ingest_images,
    report_duplicate_images,
    split_dataset,
    summarize_class_distribution,
    validate_dataset,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                ingest_images,
                "params:data",
                ["ingested_images", "rejected_images", "label_noise", "ingest_counts"],
                name="ingest_images",
            ),
            Node(apply_label_fixes, ["ingested_images", "params:data"], ["fixed_images", "applied_label_fixes"],
                 name="apply_label_fixes"),
            Node(validate_dataset, ["fixed_images", "params:split"], "dataset", name="validate_dataset"),
            Node(report_duplicate_images, "dataset", "duplicate_images", name="report_duplicate_images"),
            Node(split_dataset, ["dataset", "params:split"], "split", name="split_dataset"),
            Node(count_split, "split", "split_counts", name="count_split"),
            Node(
                compute_normalization_stats,
                ["dataset", "split", "params:normalization"],
                "normalization_stats",
                name="compute_normalization_stats",
            ),
            Node(
                summarize_class_distribution,
                "split",
                ["class_distribution", "class_distribution_plot"],
                name="summarize_class_distribution",
            ),
        ]
    )
