"""Before a run: every saved dataset the pipeline reads but does not write must exist.

Without this a run that starts from saved data (`--pipelines=diagnose` or `evaluate`
on a fresh checkout) fails deep in a loader with a multi-screen traceback.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from classwise.core.errors import ConfigError

# Which command writes each saved input a pipeline may start from.
WRITTEN_BY = {
    "dataset": "data", "split": "data", "normalization_stats": "data", "duplicate_images": "data",
    "label_noise": "data", "rejected_images": "data",
    "model": "train", "training_history": "train", "training_dynamics": "train",
    "predictions": "evaluate", "per_class_report": "evaluate",
}


class SavedInputsCheck:
    # tryfirst: refuse before kedro-mlflow opens a tracking run that would be left behind.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        missing = [name for name in sorted(pipeline.inputs())
                   if not name.startswith("params:") and name != "parameters" and not catalog.exists(name)]
        if missing:
            name = missing[0]
            writer = WRITTEN_BY.get(name)
            fix = f"run 'kedro run --pipelines={writer}' first" if writer else "run the pipeline that writes it first"
            raise ConfigError(
                f"This run reads the saved dataset '{name}'"
                + (f" (and {', '.join(repr(m) for m in missing[1:])})" if len(missing) > 1 else "")
                + f", which has not been written yet; {fix}."
            )
