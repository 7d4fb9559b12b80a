"""New images (a file or a folder) -> top-k predictions, the files not predicted, a contact sheet."""

from kedro.pipeline import Node, Pipeline

from classwise.pipelines.predict.nodes import predict_new_images


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_new_images,
                ["model", "params:predict", "params:data", "saved_mlflow_model_info"],
                ["new_predictions", "new_predictions_rejected", "new_predictions_plot"],
                name="predict_new_images",
            )
        ]
    )
