"""The user's main command: data, then training, then evaluation and reports."""

from kedro.pipeline import Node, Pipeline

from classwise.pipelines.data.pipeline import create_pipeline as data_pipeline
from classwise.pipelines.evaluate.pipeline import create_pipeline as evaluate_pipeline
from classwise.pipelines.predict.nodes import log_mlflow_model
from classwise.pipelines.train.nodes import summarize_training_dynamics, train_model


def create_pipeline(**kwargs) -> Pipeline:
    training = Pipeline(
        [
            Node(
                train_model,
                ["dataset", "split", "normalization_stats", "params:train", "params:evaluate.aum_threshold"],
                ["model", "training_history", "training_dynamics"],
                name="train_model",
            ),
            Node(
                summarize_training_dynamics,
                ["training_dynamics", "label_noise", "params:evaluate.aum_threshold"],
                ["training_dynamics_plot", "dynamics_metrics"],
                name="summarize_training_dynamics",
            ),
        ]
    )
    # The trained model as an MLflow Model in the run and the registry, ready to serve.
    logging = Pipeline([
        Node(
            log_mlflow_model,
            ["model", "normalization_stats", "metrics", "dataset", "split", "params:predict",
             "params:data.image_folder.background"],
            "mlflow_model_info",
            name="log_mlflow_model",
        )
    ])
    return data_pipeline() + training + evaluate_pipeline() + logging
