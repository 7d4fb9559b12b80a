"""``python -m classwise.ablation``: run the ablation ladder from the project root.

Exit status: 0 when every step finished, 1 when a step (or the shared data
stages) failed, 2 when the command or the ladder's configuration is wrong.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click
from omegaconf import OmegaConf

from classwise.core.errors import ClasswiseError, ConfigError


def _split_items(text: str) -> list[str]:
    """Split on commas outside brackets, so that ``train.milestones=[60,90]`` stays one item."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [i.strip() for i in items if i.strip()]


def parse_params(text: str | None) -> dict[str, Any]:
    """``a.b=1,c=[1,2]`` -> {'a.b': 1, 'c': [1, 2]}, values typed as ``kedro run --params`` types them."""
    params: dict[str, Any] = {}
    for item in _split_items(text or ""):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}' must look like key=value, e.g. train.epochs=3.", param_hint="--params")
        params[key.strip()] = OmegaConf.to_container(OmegaConf.from_dotlist([f"value={value}"]))["value"]
    return params


def _interrupt(signum: int, frame: Any) -> None:
    from classwise.framework.interrupts import RunInterrupted

    raise RunInterrupted(signum)  # a KeyboardInterrupt that names its signal on the runs it ends


def _show(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(no overrides)"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scale", default=None, help="Scale to run (conf: ablation.scales); default: ablation.scale.")
@click.option("--steps", default=None, help="Comma-separated steps to run (default: the whole ladder).")
@click.option("--env", "-e", default=None, help="Kedro configuration environment, as for `kedro run`.")
@click.option("--params", default=None, help="Overrides for the data stage and every step, e.g. train.device=cuda.")
@click.option("--dry-run", is_flag=True, help="List the runs and their overrides; train nothing.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: the steps one after another here; ray: the steps as Ray tasks, in parallel.")
@click.option("--address", default=None,
              help="[ray] a running Ray cluster ('auto', ray://host:10001); default: a local Ray for this ladder.")
@click.option("--tracking-uri", default=None,
              help="[ray] MLflow tracking server every worker reaches; default: one started on 127.0.0.1.")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None, help="[ray] CPUs of the local Ray (default: all).")
@click.option("--cpus-per-step", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="[ray] CPUs each step asks for.")
@click.option("--gpus-per-step", type=click.FloatRange(min=0), default=None,
              help="[ray] GPUs each step asks for (default: 1 when the cluster has GPUs, else 0).")
@click.option("--project-path", type=click.Path(file_okay=False, path_type=Path), default=Path.cwd,
              help="Project root (default: the current folder).")
def main(scale: str | None, steps: str | None, env: str | None, params: str | None, dry_run: bool,
         executor: str, address: str | None, tracking_uri: str | None, num_cpus: int | None, cpus_per_step: float,
         gpus_per_step: float | None, project_path: Path) -> None:
    """Run the seed's ablation ladder: one MLflow run a step under one parent run."""
    from classwise.ablation.runner import plan_ladder, run_ladder  # imports Kedro and MLflow; keep --help fast

    signal.signal(signal.SIGTERM, _interrupt)  # so that a killed ladder marks its open runs KILLED

    only = _split_items(steps) if steps else None
    overrides = parse_params(params)
    try:
        if dry_run:
            plan = plan_ladder(project_path, scale, env, only, overrides)
            common = plan.scale_overrides
            click.echo(f"Scale '{plan.scale}': {len(plan.steps)} runs, every one checked; every run and the data "
                       f"stage: {_show(common)}")
            for run, params, overrides in zip(plan.steps, plan.step_params, plan.step_overrides):
                own = {k: v for k, v in overrides.items() if k not in common or common[k] != v}
                train = params.get("train", {})
                click.echo(f"  {run.name}: {run.changes}\n      {_show(own)}\n      runs train.model="
                           f"{train.get('model')} train.model_options={train.get('model_options')}")
            if plan.caveat:
                click.echo(f"Note: {plan.caveat}")
            return
        ray = None
        if executor == "ray":
            from classwise.ablation.executors.ray import RayOptions

            ray = RayOptions(address, tracking_uri, num_cpus, cpus_per_step, gpus_per_step)
        elif any(v is not None for v in (address, tracking_uri, num_cpus, gpus_per_step)) or cpus_per_step != 1.0:
            raise ConfigError("--address, --tracking-uri, --num-cpus, --cpus-per-step and --gpus-per-step apply to "
                              "--executor ray only; add --executor ray or drop them.")
        result = run_ladder(project_path, scale, env, overrides, only, ray)
        if result.caveat:
            click.echo(f"Note: {result.caveat}")
    except ClasswiseError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
