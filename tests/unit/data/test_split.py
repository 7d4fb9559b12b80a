import numpy as np
import pandas as pd
import pytest

from classwise.core.errors import ConfigError
from classwise.data.split import SplitConfig, dataset_rows, split_table, subset_index


def test_per_class_counts_and_disjoint_subsets(small_images):
    split = split_table(small_images, SplitConfig(val_per_class=3, test_per_class=4, seed=0))
    assert len(split) == len(small_images) and split["id"].is_unique
    per_class = split.groupby(["label", "subset"], observed=False).size().unstack()
    assert (per_class["val"] == 3).all() and (per_class["test"] == 4).all()
    assert per_class["train"].tolist() == [40 - 7, 30 - 7, 25 - 7, 60 - 7]
    sets = [set(split.loc[split["subset"] == s, "id"]) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_same_seed_same_split_other_seed_other_split(small_images):
    a = split_table(small_images, SplitConfig(seed=3, val_per_class=2, test_per_class=2))
    b = split_table(small_images, SplitConfig(seed=3, val_per_class=2, test_per_class=2))
    c = split_table(small_images, SplitConfig(seed=4, val_per_class=2, test_per_class=2))
    assert a.equals(b)
    assert not a["subset"].equals(c["subset"])


def test_too_small_class_is_named_with_its_count(small_images):
    with pytest.raises(ConfigError, match=r"Class 'class 2' has 25 images, fewer than the 30"):
        split_table(small_images, SplitConfig(val_per_class=15, test_per_class=14))
    with pytest.raises(ConfigError, match=r"Class 'class 1' has 30; class 'class 2' has 25 images"):
        split_table(small_images, SplitConfig(val_per_class=15, test_per_class=15))


def test_subset_index_points_at_the_right_images(small_images):
    split = split_table(small_images, SplitConfig(val_per_class=2, test_per_class=2))
    index = subset_index(small_images, split, "val")
    assert [small_images.ids[i] for i in index] == split.loc[split["subset"] == "val", "id"].tolist()
    assert np.array_equal(small_images.labels[index], split.loc[split["subset"] == "val", "label"])


def test_fractions_hold_out_a_share_of_each_class(small_images):
    cfg = SplitConfig(val_fraction=0.1, test_fraction=0.2, seed=0)
    split = split_table(small_images, cfg)
    per_class = split.groupby(["label", "subset"], observed=False).size().unstack()
    # classes of 40, 30, 25, 60: round(n * share), at least one image
    assert per_class["val"].tolist() == [4, 3, 2, 6] and per_class["test"].tolist() == [8, 6, 5, 12]
    assert per_class.sum(axis=1).tolist() == [40, 30, 25, 60]
    assert split.equals(split_table(small_images, cfg))
    assert not split["subset"].equals(split_table(small_images, SplitConfig(val_fraction=0.1, test_fraction=0.2, seed=1))["subset"])


def test_a_fraction_and_a_count_mix_and_tiny_shares_keep_one_image(small_images):
    split = split_table(small_images, SplitConfig(val_fraction=0.01, test_per_class=3))
    per_class = split.groupby(["label", "subset"], observed=False).size().unstack()
    assert per_class["val"].tolist() == [1, 1, 1, 1] and per_class["test"].tolist() == [3, 3, 3, 3]


def test_fraction_too_large_for_a_class_names_it():
    from tests.conftest import make_images

    data = make_images([40, 2])
    with pytest.raises(ConfigError, match=r"Class 'class 1' has 2 images, needs 3 for split.val_fraction=0.1"):
        split_table(data, SplitConfig(val_fraction=0.1, test_fraction=0.1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 1.5}, r"'split.val_fraction' must be between 0 and 1"),
        ({"test_fraction": 0.0}, r"'split.test_fraction' must be between 0 and 1"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"leave nothing to train on"),
        ({"val_per_class": -1}, r"'split.val_per_class' must be 0 or more"),
    ],
)
def test_bad_split_parameters_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SplitConfig(**kwargs)


def test_an_id_the_dataset_lacks_is_named_with_the_fix(small_images):
    split = split_table(small_images, SplitConfig(val_per_class=2, test_per_class=2))
    split.loc[(split["subset"] == "val").idxmax(), "id"] = "ghost.png"
    with pytest.raises(ValueError, match=r"The split names image 'ghost.png', which the dataset does not hold; "
                                         r"rerun the data pipeline \(kedro run --pipelines=data\)"):
        subset_index(small_images, split, "val")
    with pytest.raises(ValueError, match=r"predictions.parquet names image 'nope'.*pipelines=evaluate'"):
        dataset_rows(small_images, pd.Series([small_images.ids[0], "nope"]), "predictions.parquet",
                     "rerun 'kedro run --pipelines=evaluate'")
