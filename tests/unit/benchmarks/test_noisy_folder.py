"""benchmarks/noisy_folder.py: the noisy real folder keeps its truth outside, and a diagnosis is scored against it."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT, load_script

NOISY = load_script(PROJECT_ROOT / "benchmarks" / "noisy_folder.py")
ARCHIVE = PROJECT_ROOT.parent / "shared" / "data"


def test_score_counts_hits_among_flagged_and_the_top_n(tmp_path):
    truth = pd.DataFrame({"file": [f"c{i % 2}/{i:05d}.png" for i in range(10)],
                          "flipped": [True, True, False, False, False, False, False, False, False, False]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    reports, output = tmp_path / "data/08_reporting", tmp_path / "data/07_model_output"
    reports.mkdir(parents=True), output.mkdir(parents=True)
    # Three flagged: the two flips ranked 1 and 3, a clean image ranked 2.
    pd.DataFrame({"rank": [1, 2, 3], "source_file": ["/x/c0/00000.png", "/x/c0/00002.png", "/x/c1/00001.png"]}
                 ).to_csv(reports / "label_issues.csv", index=False)
    pd.DataFrame({"class": ["c0"], "reliability": ["reliable"]}).to_csv(reports / "class_diagnosis.csv", index=False)
    pd.DataFrame({"label": [0, 1, 1, 0], "predicted": [0, 1, 0, 0]}).to_parquet(output / "oof_predictions.parquet")
    # Training dynamics of the training images c0/00000..c1/00003 (a flip ranked first, flagged with a clean one).
    pd.DataFrame({"id": ["c0/00000.png", "c1/00003.png", "c1/00001.png", "c0/00002.png"],
                  "flagged": [True, True, False, False]}).to_parquet(output / "training_dynamics.parquet")
    result = NOISY.main(["score", "--truth", str(tmp_path / "truth.csv"), "--project", str(tmp_path)])
    kfold = result["kfold"]
    assert kfold["precision"] == pytest.approx(2 / 3) and kfold["recall"] == 1.0
    assert kfold["top_n_precision"] == 0.5  # the top 2 hold one flip
    assert kfold["oof_top1"] == 0.75 and kfold["random_precision"] == 0.2
    dynamics = result["dynamics"]  # scored against the flips among the training images: both of them
    assert dynamics["true_errors"] == 2 and dynamics["precision"] == 0.5 and dynamics["recall"] == 0.5
    assert result["both"]["flagged"] == 1 and result["both"]["precision"] == 1.0  # c0/00000 flagged by both


@pytest.mark.skipif(not (ARCHIVE / "cifar-100-python.tar.gz").is_file(),
                    reason="the real CIFAR-100 archive is not at ../shared/data")
def test_build_files_a_known_share_under_other_classes_and_keeps_the_truth_outside(tmp_path, capsys):
    root, truth_file = tmp_path / "images", tmp_path / "truth.csv"
    NOISY.main(["build", "--archive", str(ARCHIVE), "--root", str(root), "--truth", str(truth_file),
                "--superclasses", "aquatic_mammals", "fish", "--per-class", "20", "--noise", "0.1"])
    truth = pd.read_csv(truth_file)
    assert len(truth) == 10 * 20 and truth["flipped"].sum() == 20 and truth["look_alike"].sum() == 10
    assert {p.parent.name for p in root.rglob("*.png")} == set(truth["filed_class"])
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.png")) == sorted(truth["file"])
    flipped = truth[truth["flipped"]]
    assert (flipped["true_class"] != flipped["filed_class"]).all()
    assert json.loads(capsys.readouterr().out)["flipped_to_look_alike"] == 10
    with pytest.raises(SystemExit):  # the truth inside the folder would be ingested with the images
        NOISY.main(["build", "--archive", str(ARCHIVE), "--root", str(root), "--truth", str(root / "t.csv")])
