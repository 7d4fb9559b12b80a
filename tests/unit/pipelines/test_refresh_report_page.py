"""The diagnose pipeline's report.html: a saved evaluation from an earlier Classwise (a per-class report without
the columns the page reads) gives a page that says what to rerun, not a failed diagnose run at its last node."""

import pandas as pd

from classwise.pipelines.diagnose.nodes import refresh_report_page
from tests.conftest import make_images, tiny_model


def test_an_old_per_class_report_gives_a_page_saying_to_rerun_evaluate():
    data = make_images([3, 3])
    split = pd.DataFrame({"id": data.ids, "label": data.labels, "subset": "val"})
    old_report = pd.DataFrame({"subset": "val", "class": data.class_names, "precision": 1.0, "recall": 1.0,
                               "f1": 1.0, "support": 3, "train_count": 0})  # the columns before size_rank & co.
    predictions = pd.DataFrame({"id": data.ids, "subset": "val", "label": data.labels, "predicted": data.labels,
                                "confidence": 1.0})
    diagnosis = pd.DataFrame({"class": data.class_names, "evidence": ""})
    page = refresh_report_page(tiny_model(2), {"val": {"top1": 1.0}}, old_report, {"subset": "val"}, predictions,
                               data, split, {}, diagnosis, pd.DataFrame(columns=["id", "given_class"]))
    assert "run <code>kedro run --pipelines=evaluate</code>" in page and "earlier Classwise" in page
    assert "this diagnosis of 2 classes" in page
