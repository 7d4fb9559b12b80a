"""Defaults in one place, environments that override only what they name, unknown blocks refused."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.diagnosis.config import DiagnoseConfig
from classwise.framework.parameters import BLOCKS, check_parameters
from classwise.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS
from tests.conftest import PROJECT_ROOT
from tests.support.sessions import run_session

CONF = PROJECT_ROOT / "conf"
SHIPPED_ENVS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("base", "local"))


def _params(conf: Path, env: str, runtime_params: dict | None = None) -> dict:
    """Parameters as `kedro run --env <env>` loads them, with the project's own loader settings."""
    args = {**CONFIG_LOADER_ARGS, "default_run_env": env}
    return CONFIG_LOADER_CLASS(str(conf), runtime_params=runtime_params, **args)["parameters"]


def test_the_seed_environment_is_shipped():
    assert "seed" in SHIPPED_ENVS


# Where conf/base deliberately differs from the library's default: called from Python, training
# writes no checkpoint unless asked; a `kedro run` checkpoints into the project.
PROJECT_ONLY = {"train": {"checkpoint_dir": "data/06_models/checkpoints"},
                "diagnose": {"recipe": {"checkpoint_dir": "data/06_models/checkpoints/diagnose"}}}


def _replace(config, changes: dict):
    """``config`` with ``changes`` (nested dicts for nested configs) set."""
    return dataclasses.replace(config, **{
        key: _replace(getattr(config, key), value) if isinstance(value, dict) else value
        for key, value in changes.items()})


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_conf_base_lists_every_key_with_the_typed_default(block):
    """The dataclass holds the defaults; conf/base shows each of them, with the same value."""
    base = _params(CONF, "base")[block]
    cls = BLOCKS[block]
    assert set(base) == {f.name for f in dataclasses.fields(cls)}, f"conf/base '{block}' keys differ from {cls.__name__}"
    expected = _replace(cls(), PROJECT_ONLY.get(block, {}))
    assert parse(cls, base, block) == expected, f"conf/base '{block}' values differ from {cls.__name__}'s defaults"
    for field in dataclasses.fields(cls):  # a nested typed block (diagnose.recipe) lists every key too
        if dataclasses.is_dataclass(getattr(cls(), field.name)):
            nested = {f.name for f in dataclasses.fields(getattr(cls(), field.name))}
            assert set(base[field.name]) == nested, f"conf/base '{block}.{field.name}' keys differ"


def test_an_environment_naming_one_key_keeps_every_other_base_value(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("local"))
    (conf / "mine").mkdir()
    (conf / "mine" / "parameters_train.yml").write_text("train:\n  milestones: [3, 6]\n")
    base, mine = _params(conf, "base"), _params(conf, "mine")
    assert mine["train"] == {**base["train"], "milestones": [3, 6]}
    assert {k: v for k, v in mine.items() if k != "train"} == {k: v for k, v in base.items() if k != "train"}


def test_an_environment_replaces_an_option_set_whole(tmp_path):
    """conf/base's demo width must not follow into another model the environment names."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("local"))
    (conf / "dense").mkdir()
    (conf / "dense" / "parameters_train.yml").write_text(
        "train:\n  model: densenet_bc\n  model_options: {depth: 40, growth: 6}\n  loss_options: {}\n")
    train = _params(conf, "dense")["train"]
    assert train["model_options"] == {"depth": 40, "growth": 6}
    assert parse(BLOCKS["train"], train, "train").model == "densenet_bc"
    assert train["lr"] == _params(conf, "base")["train"]["lr"]  # the rest still merges


def test_params_beside_an_environment_keep_the_rest_of_the_block():
    seed = _params(CONF, "seed")
    with_root = _params(CONF, "seed", runtime_params={"data": {"root": "elsewhere"}})
    assert with_root["data"] == {**seed["data"], "root": "elsewhere"}
    # The nested key a node takes (`log_mlflow_model`) survives every environment.
    assert with_root["data"]["image_folder"]["background"] == [255, 255, 255]


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_every_shipped_environment_passes_the_parameter_check(env):
    checked = check_parameters(_params(CONF, env))
    assert set(checked) == set(BLOCKS)


def test_the_seed_environment_is_the_studys_final_recipe():
    params = _params(CONF, "seed")
    cfg = parse(BLOCKS["train"], params["train"], "train")
    assert cfg.model == "preact_se_wrn_28_10" and cfg.model_options == {}
    assert (cfg.epochs, cfg.lr, cfg.momentum, cfg.milestones, cfg.gamma, cfg.batch_size, cfg.weight_decay) == (
        120, 0.1, 0.9, [60, 90], 0.1, 128, 5e-4)
    assert (cfg.label_smoothing, cfg.oversample, cfg.cutmix_p, cfg.cutmix_alpha, cfg.augment) == (
        0.1, True, 0.5, 1.0, "crop_flip")
    assert params["data"]["source"] == "image_folder" and params["normalization"]["mode"] == "fixed"
    assert (params["normalization"]["mean"], params["normalization"]["std"]) == (0.49, 0.25)
    recipe = parse(DiagnoseConfig, params["diagnose"], "diagnose").recipe
    assert recipe.model == "preact_se_wrn_28_10" and recipe.model_options == {} and recipe.epochs == 120


def test_an_unknown_block_is_refused_naming_the_known_blocks():
    with pytest.raises(ConfigError, match=r"Unknown parameter block 'trian' .*the blocks are: ablation, data, "):
        check_parameters({**_params(CONF, "base"), "trian": {"epochs": 3}})


def test_a_check_names_the_block_it_checks():
    with pytest.raises(ConfigError, match=r"Parameter 'diagnose\.recipe\.epochs' is 0"):
        parse(DiagnoseConfig, {"recipe": {"epochs": 0}}, "diagnose")
    with pytest.raises(ConfigError, match=r"Parameter 'diagnose\.recipe\.loss_options' has 'tau'"):
        parse(DiagnoseConfig, {"recipe": {"loss_options": {"tau": 1.0}}}, "diagnose")
    with pytest.raises(ConfigError, match=r"Parameter 'train\.epochs' is 0"):
        parse(BLOCKS["train"], {"epochs": 0}, "train")


# One epoch of a width-4 network on the digits: the environment's own recipe, made tiny.
TINY = {"data": {"source": "digits"},
        "train": {"model": "preact_resnet18", "model_options": {"width": 4}, "epochs": 1, "milestones": [],
                  "progress": False, "checkpoint_dir": None}}


@pytest.mark.parametrize("env", SHIPPED_ENVS)
def test_every_shipped_environment_runs_the_train_pipeline(tmp_path, env):
    from tests.conftest import copy_project

    project = copy_project(tmp_path / "project")
    out = run_session(project, env=env, runtime_params=TINY, load=("metrics", "model"))
    assert out["model"]["config"]["name"] == "preact_resnet18"
    assert out["model"]["config"]["options"] == {"width": 4}
    assert 0.0 <= out["metrics"]["test"]["top1"] <= 1.0
