"""Kedro project settings."""

from classwise.framework.hooks import ClasswiseHooks
from classwise.framework.input_check import SavedInputsCheck
from classwise.framework.project_paths import ProjectPathsHook
from classwise.framework.interrupts import InterruptHook

# ProjectPathsHook fixes the tracking URI before kedro-mlflow reads it; InterruptHook
# closes an interrupted run as KILLED and marks runs a kill -9 left RUNNING;
# ClasswiseHooks checks every parameter before anything runs, names the run, and ends
# the console on a summary; SavedInputsCheck refuses a run whose saved inputs were never written.
HOOKS = (ProjectPathsHook(), InterruptHook(), ClasswiseHooks(), SavedInputsCheck())

from classwise.framework.config_loader import ClasswiseConfigLoader  # noqa: E402

CONFIG_LOADER_CLASS = ClasswiseConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/seed, conf/local, a user's own) names only what differs from
    # conf/base: its parameters merge into base's key by key, at every depth, except an
    # option set (model_options, loss_options), which it replaces whole (config_loader.py).
    "merge_strategy": {"parameters": "soft"},
}
