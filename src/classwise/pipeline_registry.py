"""Project pipelines: data, train (everything; the default) and evaluate."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    # Kedro 1.7 loads only the pipelines a run asks for, so "train" is absent from `--pipelines=data`.
    if "train" in pipelines:
        pipelines["__default__"] = pipelines["train"]
    return pipelines
