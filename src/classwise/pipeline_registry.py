"""Project pipelines: data, train (everything; the default) and evaluate."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipelines=data` (or evaluate) makes Kedro 1.7 discover only the pipelines asked for,
    # so "train" is absent then; without this guard that run fails with a KeyError.
    if "train" in pipelines:
        pipelines["__default__"] = pipelines["train"]
    return pipelines
