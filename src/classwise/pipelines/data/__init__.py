"""The data pipeline."""

from classwise.pipelines.data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
