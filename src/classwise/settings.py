"""Kedro project settings."""

from classwise.hooks import ClasswiseHooks
from classwise.input_check import SavedInputsCheck
from classwise.project_paths import ProjectPathsHook
from classwise.tracking.interrupts import InterruptHook

# ProjectPathsHook fixes the tracking URI before kedro-mlflow reads it; InterruptHook
# closes an interrupted run as KILLED and marks runs a kill -9 left RUNNING;
# ClasswiseHooks checks every parameter before anything runs, names the run, and ends
# the console on a summary; SavedInputsCheck refuses a run whose saved inputs were never written.
HOOKS = (ProjectPathsHook(), InterruptHook(), ClasswiseHooks(), SavedInputsCheck())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
