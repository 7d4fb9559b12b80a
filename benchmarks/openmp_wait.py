"""How long torch's idle OpenMP threads should spin: one training step timed under several settings.

    PYTHONPATH=src python benchmarks/openmp_wait.py --settings PASSIVE 3000 10000 30000 --out wait.json
    PYTHONPATH=src python benchmarks/openmp_wait.py --busy 1 --out wait_busy.json   # one core held by a spinner

OpenMP reads its wait settings once, when torch loads, so each setting needs a process of its own:
``PASSIVE`` / ``ACTIVE`` set ``OMP_WAIT_POLICY``, a number sets ``GOMP_SPINCOUNT`` (libgomp, which
torch's wheels use), ``default`` sets neither: libgomp's own default (300,000 spins), what a plain
torch script gets. The processes build the same step (classwise.training.TrainStep, width-16
pre-activation ResNet-18 by default, one fixed batch) and then take turns through a file: one
window of steps each, round after round, so the machine's load drifts over all of them alike; the
median window of each is reported. ``--busy N`` keeps N cores busy with plain spinning processes
meanwhile: what a second training, a test suite or a browser does to the step. ``ACTIVE`` threads
never sleep, so they would also slow the other processes' windows: time it alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def env_for(setting: str) -> dict[str, str]:
    """The environment of one setting's process: a wait policy or a libgomp spin count, not both."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if setting == "default":  # neither set: libgomp's own default, what a plain torch script gets
        return env
    if setting.upper() in ("PASSIVE", "ACTIVE"):
        env["OMP_WAIT_POLICY"] = setting.upper()
    elif setting.isdigit():
        env["GOMP_SPINCOUNT"] = setting
    else:
        raise SystemExit(f"--settings: {setting!r} is neither PASSIVE, ACTIVE, default nor a spin count (e.g. 10000).")
    return env


def worker(args: argparse.Namespace) -> None:
    """One setting's process: warm up, then time a window whenever the turn file names this process."""
    import torch  # before the package: libgomp reads this process's setting, not the package's PASSIVE

    from classwise.core.config import parse
    from classwise.core.device import retain_freed_memory
    from classwise.training import TrainConfig, TrainStep

    cfg = parse(TrainConfig, {"model": args.model, "model_options": {"width": args.width}, "epochs": 1,
                              "batch_size": args.batch_size, "checkpoint_dir": None, "progress": False,
                              "milestones": [], "device": "cpu"}, "train")
    retain_freed_memory()  # as fit() does on a CPU
    classes = 91
    step = TrainStep(cfg, classes, [0.5] * 3, [0.25] * 3, torch.device("cpu"),
                     torch.ones(classes, dtype=torch.long))
    g = torch.Generator().manual_seed(args.index)
    x = torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8, generator=g)
    target = torch.nn.functional.one_hot(torch.randint(0, classes, (args.batch_size,), generator=g), classes).float()

    def steps(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            loss, _ = step(x, target)
        loss.item()
        return time.perf_counter() - start

    steps(args.warmup)
    turn = Path(args.turn_file)
    rates = []
    for r in range(args.windows):
        while turn.read_text() != f"{r}:{args.index}":
            time.sleep(0.005)
        rates.append(args.steps * args.batch_size / steps(args.steps))
        following = (args.index + 1) % args.processes
        tmp = turn.with_suffix(".tmp")
        tmp.write_text(f"{r + (following == 0)}:{following}")
        os.replace(tmp, turn)
    print(json.dumps(rates), flush=True)


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def run(args: argparse.Namespace) -> dict[str, Any]:
    envs = [env_for(s) for s in args.settings]
    hogs = []
    with tempfile.TemporaryDirectory() as tmp:
        turn = Path(tmp) / "turn"
        turn.write_text("0:0")
        procs = []
        for i, env in enumerate(envs):
            cmd = [sys.executable, str(HERE), "--worker", "--index", str(i), "--processes", str(len(envs)),
                   "--turn-file", str(turn), "--model", args.model, "--width", str(args.width),
                   "--batch-size", str(args.batch_size), "--warmup", str(args.warmup), "--steps", str(args.steps),
                   "--windows", str(args.windows)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
        stop_at = time.time() + 24 * 3600
        for _ in range(args.busy):
            hog = multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True)
            hog.start()
            hogs.append(hog)
        try:
            outs = [p.communicate()[0] for p in procs]
        finally:
            for hog in hogs:
                hog.terminate()
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed: return codes {[p.returncode for p in procs]}")
    rows = {}
    for setting, out in zip(args.settings, outs):
        rates = json.loads(out.strip().splitlines()[-1])
        rows[setting] = {"images_per_s": statistics.median(rates), "windows": rates}
    first = rows[args.settings[0]]["images_per_s"]
    for setting, row in rows.items():
        row["vs_first"] = row["images_per_s"] / first
        print(f"{setting:>8}: {row['images_per_s']:6.0f} img/s (median of {args.windows} windows, "
              f"{row['vs_first']:.2f}x {args.settings[0]}), busy cores {args.busy}")
    return {"settings": rows, "busy_cores": args.busy, "cpu_count": os.cpu_count(), "machine": platform.processor()
            or platform.machine(), "python": platform.python_version(), "load_before": os.getloadavg()[0],
            "model": args.model, "width": args.width, "batch_size": args.batch_size, "steps": args.steps}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", nargs="+", default=["PASSIVE", "3000", "10000", "30000"],
                   help="PASSIVE, ACTIVE, default (neither set), or a GOMP_SPINCOUNT; the first is the ratios' base")
    p.add_argument("--busy", type=int, default=0, help="cores kept busy by spinning processes meanwhile")
    p.add_argument("--model", default="preact_resnet18")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--steps", type=int, default=12, help="steps in a timed window")
    p.add_argument("--windows", type=int, default=10, help="windows a setting; the median is reported")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--turn-file", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return None
    if "ACTIVE" in (s.upper() for s in args.settings) and len(args.settings) > 1:
        raise SystemExit("--settings: ACTIVE threads never sleep and would slow the other settings' windows; "
                         "time ACTIVE on its own.")
    report = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
