"""Kedro project settings."""

from classwise.hooks import ClasswiseHooks

# Parameters checked before anything runs; run names, description and the closing summary.
HOOKS = (ClasswiseHooks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
