"""The file MLflow runs to build the logged model (models-from-code): nothing is unpickled on load."""

import mlflow

from classwise.serving.pyfunc import ClasswiseModel

mlflow.models.set_model(ClasswiseModel())
