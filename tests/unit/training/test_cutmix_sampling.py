"""CutMix's label weights, class-balanced sampling, and the seed's heavy augmentation set."""

import numpy as np
import pytest
import torch

from classwise.training.augment import augment_batch, color_jitter, random_grayscale, random_rotation
from classwise.training.cutmix import cutmix
from classwise.training.sampling import class_balanced_indices, epoch_indices


def _index_images(b: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i and labelled i, so every pixel names its source."""
    images = torch.arange(b, dtype=torch.uint8).view(b, 1, 1, 1).expand(b, 3, size, size).contiguous()
    return images, torch.arange(b)


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_label_mass_equals_the_pasted_area(seed):
    images, labels = _index_images(10)
    rng = np.random.default_rng(seed)
    mixed, targets = cutmix(images, labels, 10, 1.0, 1.0, rng, torch.Generator().manual_seed(seed))
    assert torch.equal(images, _index_images(10)[0])  # the input batch is left alone
    assert targets.shape == (10, 10)
    torch.testing.assert_close(targets.sum(1), torch.ones(10))
    for i in range(10):
        # The share of pixels from each source image is the weight of that image's label.
        share = torch.bincount(mixed[i, 0].flatten().long(), minlength=10).float() / (16 * 16)
        torch.testing.assert_close(targets[i], share)



def test_cutmix_with_p_one_pastes_a_box_in_most_batches():
    images, labels = _index_images(10)
    pasted = 0
    for seed in range(8):
        rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        mixed, targets = cutmix(images, labels, 10, 1.0, 1.0, rng, g)
        pasted += bool((mixed != images).any()) and not torch.equal(targets, torch.eye(10))
    assert pasted >= 6  # a box of zero area (or an image mixed with itself) is rare


def test_cutmix_with_p_zero_leaves_the_batch_unchanged():
    images, labels = _index_images(6)
    mixed, targets = cutmix(images, labels, 6, 0.0, 1.0, np.random.default_rng(0), None)
    assert torch.equal(mixed, images)
    assert torch.equal(targets, torch.eye(6))


def test_cutmix_applies_to_about_p_of_the_batches():
    images, labels = _index_images(8)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    mixed_batches = sum(
        not torch.equal(cutmix(images, labels, 8, 0.5, 1.0, rng, g)[1], torch.eye(8)) for _ in range(400)
    )
    assert 150 < mixed_batches < 250


def test_oversampling_draws_classes_near_uniformly_on_a_10_to_1_imbalance():
    labels = torch.cat([torch.full((1000,), 0), torch.full((100,), 1)] + [torch.full((n,), c) for c, n in
                                                                        enumerate([500, 300, 200], 2)])
    g = torch.Generator().manual_seed(0)
    drawn = class_balanced_indices(labels, 5, g)
    assert len(drawn) == len(labels)
    share = torch.bincount(labels[drawn], minlength=5).float() / len(drawn)
    torch.testing.assert_close(share, torch.full((5,), 0.2), atol=0.02, rtol=0)
    plain = epoch_indices(labels, 5, False, g)
    assert torch.equal(plain.sort().values, torch.arange(len(labels)))  # a shuffle visits each image once


def test_seed_heavy_draws_per_image_not_per_batch():
    torch.manual_seed(0)
    one = torch.randint(30, 220, (1, 3, 16, 16), dtype=torch.uint8)
    batch = one.repeat(64, 1, 1, 1)
    out = augment_batch(batch, "seed_heavy", torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert len({out[i].numpy().tobytes() for i in range(64)}) > 60
    # Each part on its own also differs between copies of the same image.
    x = batch.float()
    means = color_jitter(x, 0.2, torch.Generator().manual_seed(1)).mean((1, 2, 3))
    assert len(set(means.tolist())) == 64
    rotated = random_rotation(x, 15.0, torch.Generator().manual_seed(2))
    assert len({rotated[i].numpy().tobytes() for i in range(64)}) > 32
    gray = random_grayscale(x, 0.5, torch.Generator().manual_seed(3))
    n_gray = sum(bool((gray[i, 0] == gray[i, 1]).all() and (gray[i, 1] == gray[i, 2]).all()) for i in range(64))
    assert 16 < n_gray < 48
