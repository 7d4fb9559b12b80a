"""The diagnose pipeline: out-of-fold probabilities, label issues, per-class diagnosis."""

from classwise.pipelines.diagnose.pipeline import create_pipeline

__all__ = ["create_pipeline"]
