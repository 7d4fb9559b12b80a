"""The data audit: the fold models' joint embedding and cleanlab's Datalab find a near-duplicate planted
across two classes, and the tables, counts and figure say so."""

from __future__ import annotations

import numpy as np
import pytest

from classwise.diagnosis import out_of_fold_probabilities
from classwise.diagnosis.audit import audit_summary, audit_tables, run_datalab
from classwise.pipelines.diagnose.nodes import audit_data
from classwise.training import TrainConfig
from tests.conftest import make_images

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def planted():
    """Three learnable classes; image 7 (class 0) copied, with one pixel changed, into class 2."""
    data = make_images([40, 40, 40], size=16)
    copy = data.images[7].copy()
    copy[0, 0, 0] ^= 1
    data.images[100] = copy  # filed under class 2
    recipe = TrainConfig(model="preact_resnet18", model_options={"width": 4}, epochs=2, batch_size=16,
                         lr=0.05, milestones=[], device="cpu", progress=False, checkpoint_dir=None)
    result = out_of_fold_probabilities(data.images, data.labels, data.class_names, [0.5] * 3, [0.25] * 3,
                                       recipe, folds=2, seed=0, batch_size=64)
    return data, result


def test_every_image_gets_one_joint_embedding_of_unit_length(planted):
    data, result = planted
    assert result.embeddings.shape == (len(data.labels), 2 * 32)  # 2 fold models x width 4 * 8 channels
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)


def test_datalab_finds_the_near_duplicate_planted_across_classes(planted):
    data, result = planted
    lab = run_datalab(data.labels, result.probabilities, result.embeddings)
    audit, per_class = audit_tables(lab, data.ids, data.labels, data.class_names)
    near = audit[audit["issue"] == "near_duplicate"]
    first_two = set(near.head(2)["id"])
    assert first_two == {data.ids[7], data.ids[100]}  # across classes first
    pair = near[near["id"] == data.ids[100]].iloc[0]
    assert pair["other_id"] == data.ids[7] and pair["other_class"] == "class 0" and pair["across_classes"]
    assert pair["given_class"] == "class 2"
    assert set(per_class["class"]) == set(data.class_names)
    assert per_class["label_quality"].is_monotonic_increasing
    counts = audit_summary(audit, len(data.ids))
    assert counts["near_duplicates_across_classes"] >= 2
    assert counts["near_duplicate_issues"] == len(near)


def test_the_audit_node_returns_tables_a_figure_and_prefixed_metrics(planted):
    data, result = planted
    probabilities = result.probabilities
    import pandas as pd

    oof = pd.DataFrame({"id": data.ids, "label": data.labels, "probabilities": list(probabilities)})
    audit, per_class, figure, metrics = audit_data(oof, result.embeddings, data)
    assert {"label", "near_duplicate", "outlier"} >= set(audit["issue"])
    assert metrics["near_duplicates_across_classes"]["value"] >= 2
    assert "near-duplicate pairs" in " ".join(ax.get_ylabel() for ax in figure.axes)


def test_a_network_without_a_final_fc_layer_is_refused_in_one_sentence():
    from torch import nn

    from classwise.core.errors import ConfigError
    from classwise.diagnosis.folds import penultimate_and_probabilities

    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match=r"The network Sequential has no final linear layer named 'fc'.*"
                                          r"available_models\(\)"):
        penultimate_and_probabilities(network, images, [0.5] * 3, [0.25] * 3, "cpu", 2)
