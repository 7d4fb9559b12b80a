"""benchmarks/imbalance_cifar100.py: its table and figure from saved rows (no training, no real data)."""

import json
from pathlib import Path

import numpy as np

from tests.conftest import PROJECT_ROOT, load_script

SCRIPT = PROJECT_ROOT / "benchmarks" / "imbalance_cifar100.py"


def _module():
    return load_script(SCRIPT)


def _save_row(out: Path, name: str, rng, tail_right: bool) -> None:
    counts = np.array([300] * 3 + [100] * 3 + [20] * 3)
    labels = np.repeat(np.arange(9), 4)
    probs = rng.dirichlet(np.ones(9), size=len(labels)).astype(np.float32)
    right = labels < 6 if not tail_right else np.ones(len(labels), bool)
    probs[right, labels[right]] += 2.0
    probs[~right, labels[~right]] = 0.0
    probs /= probs.sum(1, keepdims=True)
    np.savez(out / f"{name}.npz", val_probs=probs, test_probs=probs, val_labels=labels, test_labels=labels,
             train_counts=counts)
    (out / f"{name}.json").write_text(json.dumps({"wall_seconds": 12.0}))


def test_table_has_a_row_a_saved_run_plus_post_hoc_and_tail_columns(tmp_path):
    bench = _module()
    rng = np.random.default_rng(0)
    _save_row(tmp_path, "cross_entropy", rng, tail_right=False)
    _save_row(tmp_path, "balanced_softmax", rng, tail_right=True)
    lines = bench.results_table(tmp_path, tau=1.0).splitlines()
    assert "tail" in lines[0] and len(lines) == 2 + 3  # header, rule, two runs, post-hoc
    ce = next(line for line in lines if line.startswith("| cross_entropy |"))
    bs = next(line for line in lines if line.startswith("| balanced_softmax |"))
    assert ce.split("|")[5].strip() == "0.0" and bs.split("|")[5].strip() == "100.0"  # tail top-1
    assert lines[-1].startswith("| cross_entropy + post-hoc adjustment (tau 1)")
    bench.recall_figure(tmp_path, ["cross_entropy", "balanced_softmax"], tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
