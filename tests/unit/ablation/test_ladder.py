"""The ladder as data: steps, extends chains, sweeps, dotted overrides, the shipped scales."""


import pytest
import yaml

from classwise.ablation import apply_overrides, expand_steps, parse_ablation
from classwise.ablation.ladder import nest, value_label
from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.training import TrainConfig
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf" / "base"


def config(steps, overrides=None, **extra):
    return parse_ablation(
        {"scale": "s", "scales": {"s": {"description": "d", "overrides": overrides or {}, "steps": steps}}, **extra}
    )


def test_extends_chains_and_sweeps_expand_in_ladder_order():
    cfg = config(
        [
            {"name": "base", "changes": "b", "overrides": {"train.lr": 0.1, "train.augment": "none"}},
            {"name": "aug", "extends": "base", "changes": "+ aug", "overrides": {"train.augment": "crop_flip"}},
            {"name": "wd", "extends": "aug", "changes": "+ wd",
             "sweep": {"key": "train.weight_decay", "values": [5.0e-4, 1.0e-3]}},
        ],
        overrides={"train.epochs": 2, "train.lr": 0.5},
    )
    runs = expand_steps(cfg, "s")
    assert [r.name for r in runs] == ["base", "aug", "wd_5e-4", "wd_1e-3"]
    assert runs[1].overrides == {"train.epochs": 2, "train.lr": 0.1, "train.augment": "crop_flip"}
    assert runs[3].overrides["train.weight_decay"] == 1e-3 and runs[3].overrides["train.augment"] == "crop_flip"
    assert runs[3].ladder_step == "wd" and "train.weight_decay = 0.001" in runs[3].changes
    # A step picked alone still inherits from the steps it extends.
    only = expand_steps(cfg, "s", only=["aug"])
    assert [r.name for r in only] == ["aug"] and only[0].overrides["train.lr"] == 0.1


@pytest.mark.parametrize(
    "steps, message",
    [
        ([{"name": "a", "changes": "", "extends": "later"}, {"name": "later", "changes": ""}], "not an earlier step"),
        ([{"name": "a", "changes": ""}, {"name": "a", "changes": ""}], "appears twice"),
        ([{"name": "a b", "changes": ""}], "may hold only"),
        ([{"name": "a", "changes": "", "sweep": {"key": "train.lr", "values": []}}], "over no values"),
        ([{"name": "a", "changes": "", "colour": "red"}], r"Unknown parameter 'ablation\.scales\.s\.steps\[0\]\.colour'"),
    ],
)
def test_a_wrong_ladder_is_one_clear_sentence(steps, message):
    with pytest.raises(ConfigError, match=message):
        expand_steps(config(steps), "s")


def test_unknown_scale_or_step_names_the_choices():
    cfg = config([{"name": "a", "changes": ""}])
    with pytest.raises(ConfigError, match="Unknown ablation scale 'big'.*choose one of: s"):
        expand_steps(cfg, "big")
    with pytest.raises(ConfigError, match=r"Unknown step \['b'\].*steps are: a"):
        expand_steps(cfg, "s", only=["b"])
    with pytest.raises(ConfigError, match="ablation.scale"):
        parse_ablation({"scale": "nope", "scales": {"s": {"description": "d"}}})


def test_overrides_replace_dicts_instead_of_merging_them():
    params = {"train": {"model": "a", "model_options": {"width": 16}, "lr": 0.1}, "data": {"source": "digits"}}
    out = apply_overrides(params, {"train.model": "b", "train.model_options": {"depth": 28}, "train.x.y": 1})
    assert out["train"]["model_options"] == {"depth": 28}  # no leftover width from model a
    assert out["train"]["x"] == {"y": 1} and out["train"]["lr"] == 0.1
    assert params["train"]["model_options"] == {"width": 16}  # the input is not modified
    assert apply_overrides(params, {"train.model_options.width": 4})["train"]["model_options"] == {"width": 4}


def test_an_override_naming_no_block_or_going_inside_a_value_is_refused():
    params = {"train": {"lr": 0.1}}
    with pytest.raises(ConfigError, match="names no parameter block 'trian'"):
        apply_overrides(params, {"trian.lr": 0.1})
    with pytest.raises(ConfigError, match="goes inside 'train.lr'"):
        apply_overrides(params, {"train.lr.x": 1})


def test_value_labels_and_nesting():
    assert [value_label(v) for v in (5e-4, 1e-3, 0.1, 0.0, 3, True, "crop flip")] == [
        "5e-4", "1e-3", "0.1", "0", "3", "true", "crop-flip",
    ]
    assert nest({"train.lr": 0.1, "train.model_options": {"w": 1}, "data.source": "x"}) == {
        "train": {"lr": 0.1, "model_options": {"w": 1}}, "data": {"source": "x"},
    }


def test_the_shipped_scales_hold_the_seeds_ladder():
    params = yaml.safe_load((CONF / "parameters_ablation.yml").read_text())["ablation"]
    cfg = parse_ablation(params)
    full = [r.name for r in expand_steps(cfg, "full")]
    seed_steps = [n for n in full if not n.startswith("imbalance_")]
    assert full[:2] == ["baseline", "augment"] and seed_steps[-1] == "final"
    assert [n for n in full if n.startswith("weight_decay_")][0] == "weight_decay_5e-4"
    assert {"ls_os_cutmix", "arch_resnet50", "arch_resnext29_8x64d", "arch_densenet_bc_100", "arch_wrn_28_10",
            "arch_se_resnet18", "arch_se_wrn_28_10"} <= set(full)
    by_name = {r.name: r.overrides for r in expand_steps(cfg, "full")}
    assert by_name["final"]["train.model"] == "preact_se_wrn_28_10"
    assert by_name["ls_os_cutmix"]["train.cutmix_p"] == 0.5 and by_name["ls_os_cutmix"]["train.oversample"] is True
    # The quick scale mirrors the full ladder step for step.
    quick = [r.name for r in expand_steps(cfg, "quick")]
    assert [n for n in quick if not n.startswith("weight_decay_")] == [
        n for n in full if not n.startswith("weight_decay_")
    ]


def test_the_imbalance_steps_change_one_remedy_each_on_the_baseline():
    params = yaml.safe_load((CONF / "parameters_ablation.yml").read_text())["ablation"]
    cfg = parse_ablation(params)
    for scale in ("quick", "full"):
        runs = {r.name: r.overrides for r in expand_steps(cfg, scale)}
        baseline = runs["baseline"]
        imbalance = {name: o for name, o in runs.items() if name.startswith("imbalance_")}
        assert {"imbalance_oversample", "imbalance_balanced_softmax", "imbalance_ldam_drw",
                "imbalance_logit_adjusted_0.5", "imbalance_focal"} <= set(imbalance)
        for name, overrides in imbalance.items():
            changed = {k for k in overrides if baseline.get(k) != overrides[k]}
            assert changed and changed <= {"train.oversample", "train.loss", "train.loss_options",
                                           "train.loss_options.tau", "train.drw_epoch"}, (scale, name)
        # every step's training parameters, on top of conf/base, pass the parameter check
        base = yaml.safe_load((CONF / "parameters_train.yml").read_text())
        for overrides in imbalance.values():
            train_overrides = {k: v for k, v in overrides.items() if k.startswith("train.")}
            parse(TrainConfig, apply_overrides(base, train_overrides)["train"], "train")


def test_only_a_step_that_changes_the_data_stages_parameters_reruns_them():
    from classwise.ablation.runner import resolve_ladder

    base = {}
    for path in sorted(CONF.glob("parameters_*.yml")):
        base.update(yaml.safe_load(path.read_text()))
    cfg = parse_ablation(base["ablation"])
    plan = resolve_ladder(base, cfg, "cleaned")
    assert {s.name: s.reruns_data for s in plan.steps} == {"before": False, "cleaned": True}
    assert plan.step_params[1]["data"]["label_fixes"] == "data/01_raw/label_fixes.csv"
    assert plan.data_params["data"]["label_fixes"] is None  # the shared data stages run without the fixes
    quick = resolve_ladder(base, cfg, "quick")
    assert not any(s.reruns_data for s in quick.steps)  # train-only overrides leave the shared data alone
