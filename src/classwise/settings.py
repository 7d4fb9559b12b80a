"""Kedro project settings."""

from classwise.project_paths import ProjectPathsHook
from classwise.tracking.interrupts import InterruptHook

# ProjectPathsHook fixes the tracking URI before kedro-mlflow reads it; InterruptHook
# closes an interrupted run as KILLED and marks runs a kill -9 left RUNNING.
HOOKS = (ProjectPathsHook(), InterruptHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
