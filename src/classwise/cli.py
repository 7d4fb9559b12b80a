"""The project's ``kedro run``: Kedro's own command, ending a user's mistake in one sentence.

Kedro loads this module's ``cli`` group over its built-in commands. ``run`` keeps every
option of Kedro's ``run``, checks the pipeline names first, and turns an error a user
can fix (a refused parameter, a missing folder, a damaged file) into its one sentence
and exit code 2, without a traceback. ``--verbose`` (or CLASSWISE_VERBOSE=1) shows the
traceback too. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import pkgutil
import sys

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from classwise.core.errors import ClasswiseError, ConfigError

USER_ERRORS = (ClasswiseError,)
EXIT_USER_ERROR = 2


def _honour_logging_config() -> None:
    """kedro-mlflow sets its logger to INFO when it is imported, over conf/logging.yml; Kedro
    imports it (a plugin) just before this module, so put the configured level back here."""
    from kedro.framework.project import LOGGING

    for name, config in (LOGGING.data.get("loggers") or {}).items():
        if name.startswith("kedro_mlflow") and isinstance(config, dict) and "level" in config:
            logging.getLogger(name).setLevel(config["level"])


_honour_logging_config()


@click.group(name="classwise")
def cli() -> None:
    """Classwise project commands."""


def available_pipelines() -> list[str]:
    """Pipeline names, from the sub-packages of classwise.pipelines (what find_pipelines registers)."""
    from classwise import pipelines

    return sorted(m.name for m in pkgutil.iter_modules(pipelines.__path__) if m.ispkg)


def user_error_message(exc: BaseException) -> str | None:
    """The one sentence of an error a user can fix, found along the exception's chain; else None."""
    seen: set[int] = set()
    chain: BaseException | None = exc
    dataset_error = None
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, USER_ERRORS):
            return str(chain)
        if isinstance(chain, DatasetError) and dataset_error is None:
            dataset_error = chain
        chain = chain.__cause__ or chain.__context__
    if dataset_error is not None:
        # Kedro's wrapper says which dataset; its last line is the cause in words.
        lines = [line.strip() for line in str(dataset_error).splitlines() if line.strip()]
        return " ".join(lines[-2:]) if lines else type(dataset_error).__name__
    return None


def _check_pipeline_names(names: list[str], single: str | None) -> None:
    known = available_pipelines()
    asked = [*names, *([single] if single else [])]
    unknown = [n for n in asked if n not in known and n != "__default__"]
    if unknown:
        raise ConfigError(
            f"Unknown pipeline {', '.join(repr(n) for n in unknown)}; the pipelines are: "
            f"{', '.join(known)} (and __default__ = train)."
        )


@cli.command(name="run", params=[
    *kedro_run.params,
    click.Option(["--verbose"], is_flag=True, default=False,
                 help="Show the full traceback of an error (also: CLASSWISE_VERBOSE=1)."),
], help=kedro_run.help)
def run(verbose: bool, **kwargs):
    verbose = verbose or os.environ.get("CLASSWISE_VERBOSE", "") not in ("", "0", "false")
    try:
        _check_pipeline_names(kwargs.get("pipelines") or [], kwargs.get("pipeline"))
        return kedro_run.callback(**kwargs)
    except Exception as exc:
        message = user_error_message(exc)
        if message is None or verbose:
            raise
        click.echo(f"Error: {message}", err=True)
        sys.exit(EXIT_USER_ERROR)
