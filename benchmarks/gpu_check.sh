#!/usr/bin/env bash
# GPU readiness in one unattended run (≤ 8 minutes on one CUDA GPU), from the project root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR: gpu_check/
#
# 1. the environment (GPU, driver, torch, CUDA) and the speed path `auto` picks there;
# 2. training throughput of preact_se_wrn_28_10 (the study's final network), batch 128: our step
#    in bf16 + channels-last + torch.compile against the torchvision-reference DataLoader loop;
# 3. one epoch of the same network on the real seed-like CIFAR-100 cut (when
#    ../shared/data/cifar-100-python.tar.gz or $CIFAR_ROOT is there), ours and the reference's;
# 4. a 2-process DDP smoke run of the training core when 2 GPUs are visible.
#
# Each step has its own time limit and writes its own JSON; a failed step is recorded in
# OUT_DIR/gpu_check.json with its exit status and the tail of its log, and the next one runs.
# Needs torch, torchvision and numpy (the training core); no Kedro or MLflow.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
CIFAR_ROOT="${CIFAR_ROOT:-../shared/data}"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU is visible to torch here; run it on a machine with one (nothing was measured)." >&2
    exit 2
fi

steps=()
run_step() {  # run_step NAME LIMIT_S COMMAND...
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -5 "$OUT/$name.log"
    steps+=("$name:$rc:$((SECONDS - start))")
}

run_step environment 60 "$PY" - "$OUT/environment.json" <<'EOF'
import json, sys, subprocess, torch
from classwise.core.device import speed_path
dev = torch.device("cuda")
env = {"gpu": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(), "torch": torch.__version__,
       "cuda": torch.version.cuda, "speed_path": speed_path(dev).describe()}
try:
    env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
except Exception as exc:  # noqa: BLE001 - a missing nvidia-smi is recorded, not fatal
    env["driver"] = f"unknown ({exc})"
json.dump(env, open(sys.argv[1], "w"), indent=2)
print(env)
EOF

run_step throughput 240 "$PY" benchmarks/throughput.py --model preact_se_wrn_28_10 --batch-size 128 \
    --compile --warmup 30 --steps 40 --windows 5 --out "$OUT/throughput.json"

if [ -f "$CIFAR_ROOT/cifar-100-python.tar.gz" ]; then
    run_step real_epoch 200 "$PY" benchmarks/time_to_accuracy.py --root "$CIFAR_ROOT" --device cuda \
        --model preact_se_wrn_28_10 --width 16 --epochs 1 --milestones --batch-size 128 --target 0.05 \
        --out "$OUT/real_epoch.json"
else
    echo "== real_epoch skipped: no $CIFAR_ROOT/cifar-100-python.tar.gz (set CIFAR_ROOT)"
    steps+=("real_epoch:skipped:0")
fi

if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    run_step ddp_smoke 120 "$PY" - "$OUT/ddp_smoke.json" <<'EOF'
import json, sys, time, numpy as np
from classwise.training import TrainConfig, fit
rng = np.random.default_rng(0)
x, y = rng.integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 4096)
start = time.perf_counter()
result = fit(x, y, x[:256], y[:256], 10, [0.5] * 3, [0.25] * 3,
             TrainConfig(epochs=2, batch_size=256, device="cuda", nproc_per_node=2, progress=False))
row = {"seconds": time.perf_counter() - start, "history": result.history}
json.dump(row, open(sys.argv[1], "w"), indent=2)
print(row["seconds"], [r["train_loss"] for r in result.history])
EOF
else
    echo "== ddp_smoke skipped: fewer than 2 GPUs"
    steps+=("ddp_smoke:skipped:0")
fi

"$PY" - "$OUT" "${steps[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, steps = Path(sys.argv[1]), sys.argv[2:]
summary = {}
for entry in steps:
    name, rc, seconds = entry.split(":")
    row = {"exit": rc, "seconds": int(seconds)}
    figures = out / f"{name}.json"
    if figures.exists():
        row["figures"] = json.loads(figures.read_text())
    elif (out / f"{name}.log").exists():
        row["log_tail"] = (out / f"{name}.log").read_text()[-2000:]
    summary[name] = row
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
print(f"gpu_check: {', '.join(f'{k} {v['exit']}' for k, v in summary.items())}; figures in {out / 'gpu_check.json'}")
EOF
