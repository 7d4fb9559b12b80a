"""The ablation ladder as data: scales, steps, sweeps and dotted parameter overrides.

Plain Python (no Kedro, no MLflow): it turns the ``ablation`` parameter block into
the ordered list of runs to make, each with the exact parameter overrides it needs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from classwise.core.config import parse
from classwise.core.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class SweepConfig:
    key: str  # the dotted parameter swept, e.g. train.weight_decay
    values: list[Any]  # one run a value, named <step>_<value>


@dataclass
class StepConfig:
    name: str  # the MLflow run name; letters, digits, '_', '-', '.'
    changes: str  # what this step changes, in words (summary table and run description)
    extends: str | None = None  # an earlier step of the same ladder whose overrides this one starts from
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value, replacing what is there
    merge: list[str] = field(default_factory=list)  # keys of `overrides` whose dict merges into what is under it
    sweep: SweepConfig | None = None  # expands the step into one run a value


@dataclass
class ScaleConfig:
    description: str  # what this scale is for (the parent run's description)
    caveat: str = ""  # how far its numbers go, shown with its summary table, on the parent run and in the console
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted overrides for the data stage and every step
    steps: list[StepConfig] = field(default_factory=list)  # the ladder, in order


@dataclass
class AblationConfig:
    scale: str  # the scale run when none is named on the command line
    scales: dict[str, Any]  # name -> ScaleConfig
    data_pipeline: str = "data"  # the shared stages, run once into the normal catalog
    step_pipeline: str = "train"  # each step runs this pipeline ...
    step_from_nodes: list[str] = field(default_factory=lambda: ["train_model"])  # ... from these nodes


DATA_STAGE_BLOCKS = ("data", "split", "normalization")  # the parameter blocks the shared data stages read


@dataclass(frozen=True)
class Step:
    """One run of the ladder, fully resolved."""

    name: str  # MLflow run name
    ladder_step: str  # the configured step it comes from (differs from name for a sweep)
    changes: str
    overrides: dict[str, Any]  # every dotted override of this run, the scale's first
    merge: tuple[str, ...] = ()  # overrides whose dict value merges into the base value key by key
    # True when the step changes what the shared data stages read (data, split, normalization parameters,
    # e.g. data.label_fixes): it runs those stages again, in its own folder, before training.
    reruns_data: bool = False


def parse_ablation(params: Mapping[str, Any] | None) -> AblationConfig:
    """The ``ablation`` parameter block, validated (scales parsed one by one)."""
    if not params:
        raise ConfigError(
            "Parameter block 'ablation' is missing; add it in conf/base/parameters_ablation.yml."
        )
    cfg = parse(AblationConfig, params, "ablation")
    cfg.scales = {
        str(name): parse(ScaleConfig, scale, f"ablation.scales.{name}") for name, scale in cfg.scales.items()
    }
    for name, scale in cfg.scales.items():
        _check_overrides(scale.overrides, f"ablation.scales.{name}.overrides")
        for i, step in enumerate(scale.steps):
            _check_overrides(step.overrides, f"ablation.scales.{name}.steps[{i}].overrides")
    if cfg.scale not in cfg.scales:
        raise ConfigError(_unknown_scale(cfg.scale, cfg.scales, "ablation.scale"))
    return cfg


def _unknown_scale(scale: str, scales: Mapping[str, Any], where: str) -> str:
    return f"Unknown ablation scale '{scale}' ({where}); choose one of: {', '.join(sorted(scales))}."


def _check_overrides(overrides: Mapping[str, Any], where: str) -> None:
    for key in overrides:
        if not isinstance(key, str) or not all(key.split(".")):
            raise ConfigError(f"Override key {key!r} in '{where}' must be a dotted parameter name like 'train.lr'.")


def value_label(value: Any) -> str:
    """A short, run-name-safe label: 0.0005 -> '5e-4', 0.1 -> '0.1', True -> 'true'."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    if isinstance(value, float):
        return f"{value:g}"
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", str(value)).strip("-")


def expand_steps(cfg: AblationConfig, scale: str, only: Sequence[str] | None = None) -> list[Step]:
    """The runs of ``scale`` in ladder order: ``extends`` chains resolved, sweeps expanded.

    ``only`` keeps the runs whose name or ladder step is listed (``extends`` still
    reads the whole ladder, so a later step can run alone).
    """
    if scale not in cfg.scales:
        raise ConfigError(_unknown_scale(scale, cfg.scales, "--scale"))
    ladder: ScaleConfig = cfg.scales[scale]
    where = f"ablation.scales.{scale}.steps"
    own: dict[str, dict[str, Any]] = {}  # step name -> its overrides with its extends chain applied
    runs: list[Step] = []
    for step in ladder.steps:
        if not _NAME.match(step.name):
            raise ConfigError(f"Step name '{step.name}' in '{where}' may hold only letters, digits, '_', '-', '.'.")
        if step.name in own:
            raise ConfigError(f"Step name '{step.name}' appears twice in '{where}'; names must be unique.")
        base: dict[str, Any] = {}
        if step.extends is not None:
            if step.extends not in own:
                raise ConfigError(
                    f"Step '{step.name}' in '{where}' extends '{step.extends}', which is not an earlier step; "
                    f"earlier steps are: {', '.join(own) or 'none'}."
                )
            base = own[step.extends]
        merged = dict(base)
        for key, value in step.overrides.items():
            under = merged.get(key, ladder.overrides.get(key))  # the parent step's value, else the scale's
            if key in step.merge and isinstance(value, Mapping) and isinstance(under, Mapping):
                merged[key] = _deep_merge(under, value)  # and into the project's value, in apply_overrides
            else:
                merged[key] = value
        own[step.name] = merged
        unknown = sorted(set(step.merge) - set(step.overrides))
        if unknown:
            raise ConfigError(f"Step '{step.name}' in '{where}' merges {unknown}, which it does not override; "
                              f"list in 'merge' only keys of its own 'overrides'.")
        merge_keys = tuple(step.merge)
        if step.sweep is None:
            runs.append(Step(step.name, step.name, step.changes, {**ladder.overrides, **merged}, merge_keys))
            continue
        if not step.sweep.values:
            raise ConfigError(f"Step '{step.name}' in '{where}' sweeps '{step.sweep.key}' over no values; list some.")
        for value in step.sweep.values:
            name = f"{step.name}_{value_label(value)}"
            changes = f"{step.changes} ({step.sweep.key} = {value})"
            runs.append(Step(name, step.name, changes, {**ladder.overrides, **merged, step.sweep.key: value},
                             merge_keys))
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Run names {duplicates} appear twice in '{where}' once sweeps are expanded; rename a step.")
    if only:
        unknown = sorted(set(only) - set(names) - {r.ladder_step for r in runs})
        if unknown:
            raise ConfigError(f"Unknown step {unknown} for scale '{scale}'; steps are: {', '.join(names)}.")
        runs = [r for r in runs if r.name in only or r.ladder_step in only]
    return runs


def step_params(base_params: Mapping[str, Any], step: Step, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters one run of the ladder gets: the project's, then the step's overrides, then ``extra``.

    The only resolution of a step: the pre-run check, ``--dry-run``, the summary and the
    run itself all use it (the runner hands its result to the step's Kedro session).
    """
    return apply_overrides(base_params, {**step.overrides, **(extra or {})}, merge=step.merge)


def apply_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any],
                    merge: Sequence[str] = ()) -> dict[str, Any]:
    """A copy of ``params`` with each dotted key set to its value.

    A value replaces what is at its key, dicts included: a step that switches
    ``train.model_options`` must not inherit the options of the model it replaces
    (Kedro's own runtime parameters merge dicts key by key, which would). A key listed
    in ``merge`` whose value is a dict merges into the dict already there instead.
    The first part of a key must name an existing block, so that a typo such as
    ``trian.lr`` is an error, not a silently unused parameter.
    """
    result = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        parts = key.split(".")
        if parts[0] not in result:
            raise ConfigError(
                f"Override '{key}' names no parameter block '{parts[0]}'; blocks are: {', '.join(sorted(result))}."
            )
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"Override '{key}' goes inside '{'.'.join(parts[: i + 1])}', which is {child!r}, not a block."
                )
            node = child
        current = node.get(parts[-1])
        if key in merge and isinstance(value, Mapping) and isinstance(current, Mapping):
            node[parts[-1]] = _deep_merge(current, value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return result


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys -> nested dicts (how Kedro records runtime parameters)."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return nested
