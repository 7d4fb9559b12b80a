"""Use a trained model: predict new images, the MLflow pyfunc model, its logging and registration."""

from classwise.serving.config import PredictConfig
from classwise.serving.predictor import NewPredictions, Predictor, network_from_model, predict_path, predictor_from_model, top_k_table

__all__ = [
    "NewPredictions", "PredictConfig", "Predictor", "network_from_model", "predict_path", "predictor_from_model",
    "top_k_table",
]
