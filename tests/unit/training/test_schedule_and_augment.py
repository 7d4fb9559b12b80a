import pytest
import torch

from classwise.training.augment import augment_batch, random_crop, random_hflip
from classwise.core.config import parse
from classwise.core.errors import ConfigError
from classwise.training import TrainConfig
from classwise.training.schedule import lr_at, one_cycle_lr, step_lr


@pytest.mark.parametrize(("epoch", "lr"), [(0, 0.1), (59, 0.1), (60, 0.01), (89, 0.01), (90, 0.001), (119, 0.001)])
def test_seed_schedule(epoch, lr):
    assert step_lr(epoch, 0.1, [60, 90], 0.1) == pytest.approx(lr)


def test_one_cycle_rises_from_a_tenth_to_the_peak_then_falls_linearly_to_zero():
    lrs = [one_cycle_lr(i, 100, 0.4, warmup=0.2) for i in range(100)]
    assert lrs[0] == pytest.approx(0.04) and max(lrs) == pytest.approx(0.4) and lrs.index(max(lrs)) == 20
    assert all(a < b for a, b in zip(lrs[:20], lrs[1:21])) and all(a > b for a, b in zip(lrs[20:], lrs[21:]))
    assert lrs[60] == pytest.approx(0.2) and lrs[-1] == pytest.approx(0.4 * 0.01 / 0.8)


def test_lr_at_follows_the_schedule_the_recipe_names():
    step = parse(TrainConfig, {"epochs": 4, "lr": 0.1, "milestones": [2]}, "train")
    assert [lr_at(step, e, 7, 10) for e in range(4)] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    cycle = parse(TrainConfig, {"epochs": 4, "lr": 0.1, "milestones": [], "schedule": "one_cycle"}, "train")
    assert lr_at(cycle, 2, 5, 10) == pytest.approx(one_cycle_lr(25, 40, 0.1, 0.2))


def test_a_warmup_outside_zero_to_one_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="train.warmup"):
        parse(TrainConfig, {"warmup": 1.0}, "train")


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        assert any(
            torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8]) for dy in range(5) for dx in range(5)
        )


def test_crop_and_flip_draw_per_image_not_per_batch():
    x = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8).repeat(64, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, "crop_flip", g)
    distinct = {out[i].numpy().tobytes() for i in range(64)}
    assert len(distinct) > 10
    flipped = random_hflip(x, torch.Generator().manual_seed(1))
    n_flipped = sum(torch.equal(flipped[i], x[i].flip(2)) for i in range(64))
    assert 10 < n_flipped < 54


def test_none_leaves_the_batch_alone_and_unknown_is_an_error():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(augment_batch(x, "none", None), x)
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        augment_batch(x, "blur", None)
