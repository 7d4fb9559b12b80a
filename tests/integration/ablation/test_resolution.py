"""One resolution of a step's parameters: the check, --dry-run and the run see the same thing."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from classwise.ablation.ladder import parse_ablation
from classwise.ablation.runner import resolve_ladder
from classwise.core.errors import ConfigError
from classwise.models import build_model
from tests.support.sessions import mlflow_state_restored
from tests.integration.test_environments import CONF, _params

BASE = _params(CONF, "base")


def _ladder(step_extra: dict) -> dict:
    return {"scale": "s", "scales": {"s": {"description": "d", "overrides": {"train.model_options": {"width": 4}},
                                           "steps": [{"name": "dense", "changes": "DenseNet-BC",
                                                      "overrides": {"train.model": "densenet_bc",
                                                                    "train.model_options": {"depth": 10, "growth": 4}},
                                                      **step_extra}]}}}


def test_a_dict_override_replaces_the_parents_dict():
    plan = resolve_ladder(BASE, parse_ablation(_ladder({})))
    assert plan.step_params[0]["train"]["model_options"] == {"depth": 10, "growth": 4}
    assert plan.step_params[0]["train"]["model"] == "densenet_bc"


def test_a_step_that_merges_its_dict_is_refused_before_any_run_when_the_merge_conflicts():
    cfg = parse_ablation(_ladder({"merge": ["train.model_options"]}))
    with pytest.raises(ConfigError, match=r"Ablation step 'dense': Parameter 'train.model_options' has 'width', "
                                          r"which model 'densenet_bc' does not take"):
        resolve_ladder(BASE, cfg)


def test_a_merged_dict_merges_into_the_parent_step_the_scale_and_the_project():
    ladder = _ladder({})
    ladder["scales"]["s"]["overrides"] = {"train.loss": "logit_adjusted", "train.loss_options": {"tau": 2.0}}
    ladder["scales"]["s"]["steps"] = [
        {"name": "wide", "changes": "w", "overrides": {"train.model_options": {"width": 8, "se_reduction": 4}}},
        {"name": "narrow", "extends": "wide", "changes": "n", "merge": ["train.model_options"],
         "overrides": {"train.model_options": {"width": 4}}},
        {"name": "replaced", "extends": "wide", "changes": "r", "overrides": {"train.model_options": {"width": 4}}},
    ]
    plan = resolve_ladder(BASE, parse_ablation(ladder))
    narrow, replaced = plan.step_params[1]["train"], plan.step_params[2]["train"]
    assert narrow["model_options"] == {"width": 4, "se_reduction": 4}
    assert replaced["model_options"] == {"width": 4}
    assert narrow["loss_options"] == {"tau": 2.0}


def test_merge_names_only_keys_the_step_overrides():
    with pytest.raises(ConfigError, match=r"merges \['train.lr'\], which it does not override"):
        resolve_ladder(BASE, parse_ablation(_ladder({"merge": ["train.lr"]})))


@pytest.mark.parametrize("scale", ["quick", "full"])
def test_every_shipped_step_resolves_checks_and_builds(scale):
    plan = resolve_ladder(BASE, parse_ablation(BASE["ablation"]), scale)
    assert len(plan.steps) == len(plan.step_params) >= 10
    for step, params in zip(plan.steps, plan.step_params):
        train = params["train"]
        with torch.device("meta"):  # the real layers, no memory and no time for the weights
            network = build_model(train["model"], 91, **(train["model_options"] or {}))
        assert sum(p.numel() for p in network.parameters()) > 0, step.name


def test_the_step_session_sees_the_resolved_parameters_in_every_hook(project_copy):
    """What the hooks (the parameter check among them) and the nodes read is the resolved dict, not a deep
    merge of the step's runtime parameters into the project's: the old densenet failure."""
    from kedro.framework.startup import bootstrap_project

    from classwise.ablation.step import step_session

    ladder = _ladder({})
    ladder["scales"]["s"]["overrides"] = {}
    plan = resolve_ladder(BASE, parse_ablation(ladder))
    bootstrap_project(project_copy)
    with mlflow_state_restored():
        session = step_session(project_copy, None, plan.step_params[0], plan.step_overrides[0])
        try:
            context = session.load_context()  # runs after_context_created: the check would refuse width
            assert context.params["train"]["model_options"] == {"depth": 10, "growth": 4}
            assert context.catalog.load("params:train")["model_options"] == {"depth": 10, "growth": 4}
        finally:
            session.close()


def test_dry_run_prints_each_steps_resolved_model_and_options(project_copy, monkeypatch):
    from classwise.ablation.__main__ import main

    monkeypatch.chdir(project_copy)
    with mlflow_state_restored():
        result = CliRunner().invoke(main, ["--dry-run", "--project-path", str(project_copy)])
    assert result.exit_code == 0, result.output
    assert "arch_densenet_bc_100: step 4 on DenseNet-BC" in result.output
    assert "runs train.model=densenet_bc_100 train.model_options={'depth': 40, 'growth': 6}" in result.output
    assert "do not rank the study's recipes" in result.output


def test_dry_run_shows_the_command_lines_params_over_the_scales(project_copy, monkeypatch):
    from classwise.ablation.__main__ import main

    monkeypatch.chdir(project_copy)
    with mlflow_state_restored():
        result = CliRunner().invoke(main, ["--dry-run", "--project-path", str(project_copy),
                                           "--params", "train.epochs=2", "--steps", "baseline"])
    assert result.exit_code == 0, result.output
    assert "train.epochs=2" in result.output.splitlines()[0] and "train.epochs=8" not in result.output
