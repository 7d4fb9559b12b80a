"""Why classes are weak, from the saved dataset and split: K fold models, label issues, per-class evidence.

Not part of `train` (it trains K models): `kedro run --pipelines=diagnose`.
"""

from kedro.pipeline import Node, Pipeline

from classwise.pipelines.diagnose.nodes import (
    audit_data,
    diagnose_classes,
    find_label_issues,
    predict_out_of_fold,
    refresh_report_page,
    summarize_diagnosis,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_out_of_fold,
                ["dataset", "split", "normalization_stats", "params:diagnose"],
                ["oof_predictions", "fold_history", "fold_embeddings"],
                name="predict_out_of_fold",
            ),
            Node(
                audit_data,
                ["oof_predictions", "fold_embeddings", "dataset"],
                ["data_issues", "data_issues_by_class", "data_issues_plot", "audit_metrics"],
                name="audit_data",
            ),
            Node(
                find_label_issues,
                ["oof_predictions", "dataset", "duplicate_images", "params:diagnose", "saved_model",
                 "saved_training_dynamics"],
                ["label_issues", "label_issues_plot", "label_fixes_template"],
                name="find_label_issues",
            ),
            Node(
                diagnose_classes,
                ["oof_predictions", "dataset", "label_issues", "params:diagnose", "saved_model", "saved_metrics",
                 "saved_per_class_report"],
                ["class_diagnosis", "class_diagnosis_plot", "oof_f1_size_correlation"],
                name="diagnose_classes",
            ),
            Node(
                summarize_diagnosis,
                ["oof_predictions", "label_issues", "label_noise", "class_diagnosis", "oof_f1_size_correlation"],
                "diagnose_metrics",
                name="summarize_diagnosis",
            ),
            Node(
                refresh_report_page,
                ["saved_model", "saved_metrics", "saved_per_class_report", "saved_f1_size_correlation",
                 "saved_predictions", "dataset", "split", "params:evaluate", "class_diagnosis", "label_issues"],
                "report_page",
                name="refresh_report_page",
            ),
        ]
    )
