"""benchmarks/time_to_accuracy.py: both loops train the same recipe and report comparable rows (tiny, no real data)."""

import argparse

import numpy as np

from classwise.core.config import parse
from classwise.training import TrainConfig

from tests.conftest import PROJECT_ROOT, load_script

SCRIPT = PROJECT_ROOT / "benchmarks" / "time_to_accuracy.py"


def _module():
    return load_script(SCRIPT)


def test_time_to_target_is_the_first_epoch_at_or_over_it():
    tta = _module()
    history = [{"val_accuracy": 0.1, "elapsed_s": 5.0}, {"val_accuracy": 0.3, "elapsed_s": 9.0},
               {"val_accuracy": 0.2, "elapsed_s": 14.0}]
    assert tta.time_to(history, 0.2) == 9.0 and tta.time_to(history, 0.5) is None


def test_both_loops_train_the_same_recipe_and_fill_one_row_each():
    tta = _module()
    args = argparse.Namespace(model="preact_resnet18", width=4, epochs=2, milestones=[1], batch_size=16, lr=0.05,
                              device="cpu", schedule="step", warmup=0.2)
    cfg = parse(TrainConfig, tta.recipe(args), "train")
    rng = np.random.default_rng(0)
    sizes = {"train": 64, "val": 20, "test": 20}
    data = {f"{s}_x": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for s, n in sizes.items()}
    data.update({f"{s}_y": rng.integers(0, 4, n) for s, n in sizes.items()})
    stats = {"mean": [0.5] * 3, "std": [0.25] * 3}
    runs = {"ours": tta.run_ours(cfg, data, 4, stats), "reference": tta.run_reference(cfg, data, 4, stats, workers=0)}
    for name, run in runs.items():  # the recipe's two epochs, each once, in both loops
        assert [row["epoch"] for row in run["history"]] == [1, 2], name
    rows = [tta.summary(name, run, 0.0) for name, run in runs.items()]
    for row in rows:
        assert row["wall_s"] > 0 and row["images_per_s"] > 0 and 0 <= row["test_top1"] <= 1
        assert row["time_to_target_s"] is not None and row["time_to_target_s"] <= row["wall_s"]
    text = tta.table(rows, 0.0)
    assert "| ours |" in text and "| reference |" in text


def test_the_figure_draws_each_loop_and_a_kedro_history_against_wall_time(tmp_path):
    import json

    import pandas as pd
    from PIL import Image

    tta = _module()
    history = [{"epoch": e, "val_accuracy": 0.1 * e, "elapsed_s": 30.0 * e, "images_per_s": 900.0} for e in (1, 2)]
    report = {"recipe": {"model": "preact_resnet18", "model_options": {"width": 4}, "batch_size": 16,
                         "augment": "crop_flip", "epochs": 2}, "path": "float32 NCHW", "reference_precision": "fp32",
              "runs": {"ours": {"history": history, "test_top1": 0.2},
                       "reference": {"history": history[:1], "test_top1": 0.1}}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    pd.DataFrame({"seconds": [60.0, 60.0, 60.0], "val_accuracy": [0.1, 0.3, 0.4]}).to_csv(tmp_path / "h.csv")
    fig = tta.figure(report, {"kedro run --env cpu": pd.read_csv(tmp_path / "h.csv")})
    lines = fig.axes[0].get_lines()
    assert [len(line.get_xdata()) for line in lines] == [2, 1, 3]
    assert list(lines[2].get_xdata()) == [1.0, 2.0, 3.0]  # minutes, the epochs' seconds summed
    tta.main(["--from-json", str(tmp_path / "r.json"), "--figure", str(tmp_path / "f.png"),
              "--history", "kedro", str(tmp_path / "h.csv")])
    assert Image.open(tmp_path / "f.png").size[0] > 400


def test_several_reports_merge_into_one_figure_each_run_named_by_its_recipe(tmp_path):
    import json

    tta = _module()
    history = [{"epoch": 1, "val_accuracy": 0.1, "elapsed_s": 30.0, "images_per_s": 900.0}]
    base = {"model": "preact_resnet18", "model_options": {"width": 4}, "batch_size": 16, "augment": "crop_flip"}
    step = {"recipe": {**base, "epochs": 8, "schedule": "step"}, "path": "float32", "reference_precision": "fp32",
            "runs": {"ours": {"history": history, "test_top1": 0.2}, "reference": {"history": history, "test_top1": 0.1}}}
    cycle = {**step, "recipe": {**base, "epochs": 8, "schedule": "one_cycle"},
             "runs": {"ours": {"history": history, "test_top1": 0.3}}}
    for name, report in (("s", step), ("c", cycle)):
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    report = tta.main(["--from-json", str(tmp_path / "s.json"), str(tmp_path / "c.json"), "--figure",
                       str(tmp_path / "f.png")])
    assert list(report["runs"]) == ["ours | step, 8 epochs", "reference | step, 8 epochs",
                                    "ours | one_cycle, 8 epochs"]
    labels = [line.get_label() for line in tta.figure(report).axes[0].get_lines()]
    assert labels[2] == "Classwise's loop (one_cycle, 8 epochs): test 30.0%"
