"""report.html from small in-memory inputs: self-contained, a card per weak class, the whole table."""

import re

import numpy as np
import pandas as pd

from classwise.evaluation.per_class import per_class_report
from classwise.evaluation.report_page import PageInputs, report_page

NAMES = ["cat", "dog", "fox", "owl"]


def _inputs(diagnosis=None, label_issues=None, predicted_right=(True, False, False, True)):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 6)
    ids = [f"img{i}" for i in range(len(labels))]
    subsets = np.tile(["train", "train", "val", "val", "test", "test"], 4)
    predicted = labels.copy()
    for c, right in enumerate(predicted_right):
        if not right:  # every held-out image of the class taken for the next class
            predicted[(labels == c) & (subsets != "train")] = (c + 1) % 4
    split = pd.DataFrame({"id": ids, "label": labels, "subset": subsets})
    predictions = pd.DataFrame({"id": ids, "subset": subsets, "label": labels, "predicted": predicted,
                                "confidence": np.full(len(ids), 0.8)})
    by_subset = {s: (labels[subsets == s], predicted[subsets == s]) for s in ("train", "val", "test")}
    train_counts = np.bincount(labels[subsets == "train"], minlength=4)
    report = per_class_report(by_subset, NAMES, train_counts, np.array(["head", "medium", "tail", "tail"], object))
    low = report[(report["subset"] == "val") & (report["f1"] < 0.5)]
    correlation = {"subset": "val", "f1_threshold": 0.5, "pearson_r": None,
                   "classes_below_threshold": [{"class": c, "f1": f, "train_count": 2}
                                               for c, f in zip(low["class"], low["f1"])]}
    metrics = {"val": {"top1": 0.5, "macro_f1": 0.4, "top5": 1.0}, "test": {"top1": 0.5, "macro_f1": 0.4}}
    return PageInputs(title="Classwise report: test", metrics=metrics, per_class_report=report,
                      correlation=correlation, predictions=predictions,
                      images=rng.integers(0, 255, (len(ids), 32, 32, 3), dtype=np.uint8), ids=ids,
                      class_names=NAMES, split=split, diagnosis=diagnosis, label_issues=label_issues)


def test_the_page_has_a_card_for_each_weak_class_and_every_row_of_the_table():
    page = report_page(_inputs())
    cards = re.findall(r'<article class="card" id="class-([^"]+)">', page)
    assert sorted(cards) == ["dog", "fox"]
    assert "Most often taken for <b>fox</b>" in page and "Most often taken for <b>owl</b>" in page
    assert page.count("<tr>") == 1 + 3 * 4  # header and one row a class and subset
    assert "kedro run --pipelines=diagnose" in page  # no diagnosis yet: the next command


def test_every_image_is_embedded_and_nothing_is_fetched():
    page = report_page(_inputs())
    sources = re.findall(r'src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page


def test_with_no_weak_class_the_three_weakest_get_cards():
    page = report_page(_inputs(predicted_right=(True, True, True, True)))
    assert "No class under F1 0.5" in page
    assert len(re.findall(r'<article class="card"', page)) == 3


def test_a_diagnosis_puts_its_verdict_and_suspects_on_the_card():
    diagnosis = pd.DataFrame({"class": NAMES, "weak_verdict": ["", "holds on both", "", ""],
                              "evidence": ["-", "2 of 6 images flagged as mislabels", "-", "-"]})
    issues = pd.DataFrame({"id": ["img6", "img7"], "given_class": ["dog", "dog"], "suggested_class": ["cat", "fox"]})
    page = report_page(_inputs(diagnosis, issues))
    dog = page[page.index('id="class-dog"'):page.index('id="class-fox"')]
    assert "Diagnosis</b> (holds on both): 2 of 6 images flagged as mislabels" in dog
    assert "→ cat" in dog and "→ fox" in dog
