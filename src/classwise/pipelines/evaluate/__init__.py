"""The evaluate pipeline."""

from classwise.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
