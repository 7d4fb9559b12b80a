"""Every registered model: forward shape, no NaN, parameter counts the papers give, small variants."""

import pytest
import torch

from classwise.models import build_model

# Parameters for 10 classes (CIFAR-style), as the papers and common CIFAR code report them.
PAPER_PARAMS = {
    "resnet18": 11.17e6,
    "resnet50": 23.52e6,
    "preact_resnet18": 11.17e6,
    "resnext29_8x64d": 34.43e6,
    "resnext": 34.43e6,
    "densenet_bc_100": 0.77e6,
    "densenet_bc": 0.77e6,
    "wrn_28_10": 36.48e6,
    "preact_wrn_28_10": 36.48e6,
    "wrn": 36.48e6,
    "se_resnet18": 11.3e6,
    "se_wrn_28_10": 36.5e6,  # + SE gates, which add under 1%
    "preact_se_wrn_28_10": 36.5e6,
}

# A CPU-sized variant of each, through the same options the ablations use.
SMALL = {
    "resnet18": {"width": 8}, "resnet50": {"width": 4}, "preact_resnet18": {"width": 8},
    "se_resnet18": {"width": 8}, "resnext29_8x64d": {"cardinality": 2, "bottleneck_width": 4, "width": 8},
    "resnext": {"depth": 11, "cardinality": 2, "bottleneck_width": 4, "width": 8},
    "densenet_bc_100": {"depth": 40, "growth": 6}, "densenet_bc": {"depth": 22, "growth": 4},
    "wrn_28_10": {"depth": 10, "widen": 1}, "preact_wrn_28_10": {"depth": 10, "widen": 1},
    "wrn": {"depth": 16, "widen": 1, "width": 8}, "se_wrn_28_10": {"depth": 10, "widen": 1},
    "preact_se_wrn_28_10": {"depth": 10, "widen": 1},
}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_model_the_package_registers_is_covered_here():
    """A test may register a model of its own (tests/e2e/training/test_distributed.py); the package's are these."""
    import classwise.models.registry as registry

    own = sorted(n for n, b in registry._BUILDERS.items() if b.__module__.startswith("classwise.models"))
    assert own == sorted(PAPER_PARAMS) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_model_forward_shape_and_paper_parameter_count(name):
    with torch.device("meta"):  # counting needs shapes only; full-size weights would cost seconds
        full = build_model(name, 10)
    assert _count(full) == pytest.approx(PAPER_PARAMS[name], rel=0.02)
    # The forward pass runs the same code at a CPU-sized width of each model.
    torch.manual_seed(0)
    model = build_model(name, 10, **SMALL[name])
    assert _count(model) < _count(full)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_the_seeds_final_model_runs_at_full_size():
    torch.manual_seed(0)
    model = build_model("preact_se_wrn_28_10", 91).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 91) and torch.isfinite(out).all()


def test_se_and_preact_are_options_of_one_wrn():
    plain = build_model("wrn", 10, depth=10, widen=1)
    se = build_model("wrn", 10, depth=10, widen=1, se_reduction=4)
    assert _count(se) > _count(plain)
    assert _count(build_model("se_wrn_28_10", 10, depth=10, widen=1)) == _count(
        build_model("wrn", 10, depth=10, widen=1, se_reduction=16))
    assert _count(build_model("wrn", 10, depth=16, widen=4)) > _count(build_model("wrn", 10, depth=10, widen=4))


def test_unknown_model_and_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown model 'vgg'.*preact_se_wrn_28_10"):
        build_model("vgg", 10)
    with pytest.raises(ValueError, match="Model 'resnet18' does not take the options \\['depth'\\]"):
        build_model("resnet18", 10, depth=3)
    with pytest.raises(ValueError, match="WRN depth must be 6n \\+ 4"):
        build_model("wrn", 10, depth=27)
