"""The predict pipeline: new images through the saved or a registered model."""

from classwise.pipelines.predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
