"""data.label_fixes: drop and relabel change exactly the named images, refuse what they cannot apply, and change
the dataset's fingerprint; the diagnosis's suspects become a template to fill in."""

import numpy as np
import pandas as pd
import pytest

from classwise.core.errors import ConfigError
from classwise.data.label_fixes import apply_label_fixes, fixes_template, read_label_fixes
from classwise.pipelines.data.nodes import apply_label_fixes as apply_node
from classwise.training.lineage import dataset_fingerprint
from tests.conftest import make_images


def _fixes(tmp_path, rows, name="fixes.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_drop_and_relabel_change_exactly_the_named_images_and_the_fingerprint(tmp_path):
    data = make_images([4, 4, 4])
    ids = data.ids
    path = _fixes(tmp_path, [
        {"id": ids[0], "action": "drop", "new_class": "", "note": "a duplicate"},
        {"id": ids[5], "action": "relabel", "new_class": data.class_names[2], "note": "looks like class 2"},
        {"id": ids[9], "action": "", "new_class": data.class_names[0], "note": "undecided: kept as it is"},
    ])
    applied = apply_label_fixes(data, read_label_fixes(path), path)
    fixed = applied.data
    assert len(fixed) == len(data) - 1 and ids[0] not in fixed.ids
    assert fixed.labels[fixed.ids.index(ids[5])] == 2 and data.labels[5] == 1
    untouched = [i for i in ids if i not in (ids[0], ids[5])]
    assert [fixed.labels[fixed.ids.index(i)] for i in untouched] == [data.labels[ids.index(i)] for i in untouched]
    np.testing.assert_array_equal(fixed.images, np.delete(data.images, 0, axis=0))
    assert applied.log[["id", "action", "from_class", "to_class"]].values.tolist() == [
        [ids[0], "drop", data.class_names[0], ""], [ids[5], "relabel", data.class_names[1], data.class_names[2]]]
    assert dataset_fingerprint(fixed) != dataset_fingerprint(data)


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "no-such-image", "action": "drop"}, "name image 'no-such-image', which the data does not hold"),
    ({"id": "IMAGE", "action": "relabel", "new_class": "zebra"}, "as 'zebra', which is not a class of the data"),
])
def test_an_unknown_id_or_class_is_refused_in_one_sentence(tmp_path, row, message):
    data = make_images([3, 3])
    path = _fixes(tmp_path, [{**row, "id": data.ids[1] if row["id"] == "IMAGE" else row["id"]}])
    with pytest.raises(ConfigError, match=message) as refused:
        apply_label_fixes(data, read_label_fixes(path), path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_a_wrong_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        read_label_fixes(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="action 'delete' for image 'a'; use drop, relabel"):
        read_label_fixes(_fixes(tmp_path, [{"id": "a", "action": "delete"}]))
    with pytest.raises(ConfigError, match="lack the column"):
        read_label_fixes(_fixes(tmp_path, [{"image": "a"}]))


def test_the_ingest_node_applies_the_parameter_and_lists_every_fix(tmp_path):
    data = make_images([3, 3])
    path = _fixes(tmp_path, [{"id": data.ids[0], "action": "drop"}])
    fixed, applied = apply_node(data, {"label_fixes": str(path)})
    assert len(fixed) == 5 and applied["id"].tolist() == [data.ids[0]]
    same, none = apply_node(data, {})
    assert same is data and none.empty


def test_the_template_lists_each_suspect_with_its_suggestion_and_no_decision():
    issues = pd.DataFrame({"id": ["x1", "x2"], "given_class": ["seal", "otter"], "suggested_class": ["otter", "seal"],
                           "self_confidence": [0.05, 0.2], "reason": ["cleanlab", "duplicate across classes"]})
    template = fixes_template(issues)
    assert template.columns.tolist() == ["id", "action", "new_class", "note"]
    assert template["action"].tolist() == ["", ""] and template["new_class"].tolist() == ["otter", "seal"]
    assert template["note"].iloc[0] == "cleanlab; given seal, self-confidence 0.05"
