"""Kedro project settings."""

from classwise.hooks import ClasswiseHooks
from classwise.project_paths import ProjectPathsHook
from classwise.tracking.interrupts import InterruptHook

# ProjectPathsHook fixes the tracking URI before kedro-mlflow reads it; InterruptHook
# closes an interrupted run as KILLED and marks runs a kill -9 left RUNNING;
# ClasswiseHooks checks every parameter before anything runs, names the run, and ends
# the console on a summary.
HOOKS = (ProjectPathsHook(), InterruptHook(), ClasswiseHooks())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
