#!/usr/bin/env bash
# Issue 43, point 2: a larger NAS ground truth on one lent GPU, resumable across 15-minute slots.
#
# What it measures: 100 NAS-Bench-201 cells (sampled with seed 0, so the first 40 are the
# committed truth's cells), each trained on all 60,000 Fashion-MNIST images at C=8, N=1 for
# 12 epochs (the committed truth's settings) from 3 initialisations (truth seeds 0, 1, 2).
# The rows then give (a) the seed-to-seed agreement: Spearman between seeds, with bootstrap
# intervals, the ceiling any proxy can reach; (b) every proxy against the 3-seed mean: DM
# and MTT IPC-50 summaries and a random IPC-50 subset at proxy lr 0.1 (200 SGD steps, 0.07 of
# the truth's images seen), cheap training, and NASWOT / synflow / grad-norm; (c) whether a
# summary proxy reaches rho >= 0.6 with its interval's lower end above every zero-cost
# proxy's rho at <= 1/10 of the truth's cost. Results: experiments/results/nas_fmnist100.json,
# its cells in nas_fmnist100_cells.json (seeded from the committed 40-cell cache, so seed 0
# of the first 40 cells is never trained again), figures nas_fmnist100*.png.
#
# Sizing (measured in session 17, one H200 under MPS: a truth cell takes about 35 s in each
# of 8 processes side by side, a proxy cell about 5 s): 260 truth cells and 240 proxy cells
# are left, about 10,000 process-seconds. With 14 workers that is about 12 minutes of
# compute: one 15-minute slot (about 8 minutes of compute after the start) does stage 1 and
# most of stage 2; a second slot finishes. Each worker stops at the budget (`timeout`), every
# finished cell is already in the cache, and whatever exists is packed: commit the cache
# after each slot and call again.
#   1. truth seed 0 of the 60 new cells and seed 1 of all 100 (10 workers), beside the 240
#      proxy cells (4 workers): enough for the seed-to-seed agreement and the proxies;
#   2. truth seed 2 of all 100 (14 workers);
#   3. scoring, no training: rows, zero-cost proxies, figures, against the mean of the seeds
#      complete for all 100 cells (0,1 or 0,1,2); skipped if fewer than two are complete.
#
#   bash experiments/gpu_nas_truth.sh [BUDGET_SECONDS] [PACK]   # default 450 s, $OUT/nas_truth.tar.gz
# Device call: here `bash experiments/gpu_stage.sh stage` (the tree may travel 64 MiB only;
# it keeps the DM IPC-50 summary), then add MTT's IPC-50 summary from the aside folder:
#   d=trajectory_fmnist/mtt-fashion-mnist-ipc50-s0-start15-batch100; mkdir -p experiments/results/$d \
#     && cp /tmp/datadistill_results_aside/$d/summary.safetensors experiments/results/$d/
# then, with carry ["data", ".whl"] and timeout_s 540:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site:. bash experiments/gpu_nas_truth.sh 450
# and here `tar xzf <files_at>/nas_truth.tar.gz; bash experiments/gpu_stage.sh restore`, commit.
set -u
BUDGET=${1:-450}
PACK=${2:-${OUT:-/tmp}/nas_truth.tar.gz}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-.} DATADISTILL_DATA=${DATADISTILL_DATA:-data}
PY=${PYTHON:-python3}
R=experiments/results
# overridable for a CPU smoke test of the script itself, e.g. NAS_ARCHS=4 NAS_DEVICE=cpu
# NAS_WORKERS="1 1 1" NAS_RESULTS=/tmp/n.json NAS_DATASET=digits NAS_MTT=none
# NAS_EXTRA="--truth-epochs 1 --width 2 --steps 2" (about a minute)
ARCHS=${NAS_ARCHS:-100}
DATASET=${NAS_DATASET:-fashion-mnist}
read -r W01 WP W2 <<<"${NAS_WORKERS:-10 4 14}"
RESULTS=${NAS_RESULTS:-$R/nas_fmnist100.json}
CACHE=${RESULTS%.json}_cells.json
read -ra EXTRA <<<"${NAS_EXTRA:-}"
MTT=${NAS_MTT:-$R/trajectory_fmnist/mtt-fashion-mnist-ipc50-s0-start15-batch100/summary.safetensors}
LOGS=$R/gpu_nas_truth_logs/$(date +%Y-%m-%dT%H%M)
mkdir -p "$LOGS"
touch /tmp/gpu_nas_truth.start
left() { echo $((BUDGET - ($(date +%s) - START))); }
step() { echo "$1 after $(($(date +%s) - START)) s" | tee -a "$LOGS/steps.log"; }

# first slot: start from the committed 40-cell cache (same cells, same keys)
[ -e "$CACHE" ] || cp "$R/nas_fmnist_cells.json" "$CACHE"

# MPS lets the small processes share the GPU at once; a probe that fails turns it off
MPS=0
if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if timeout 10 nvidia-cuda-mps-control -d &&
        timeout 45 "$PY" -c "import torch; assert torch.ones(2, device='cuda').sum() == 2"; then
        MPS=1
    else
        echo quit | timeout 10 nvidia-cuda-mps-control
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
fi
step "MPS=$MPS"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 \
    >"$LOGS/gpu.csv" 2>/dev/null &
monitor=$!

NAS=("$PY" experiments/nas_fmnist.py --dataset "$DATASET" --archs "$ARCHS" --results "$RESULTS" --quiet
    --device "${NAS_DEVICE:-cuda}" "${EXTRA[@]}")
PROXIES=(--methods dm --ipc 50 --proxy-lr 0.1 --baselines random cheap)
[ -e "$MTT" ] && PROXIES+=(--summary "$MTT")

PIDS=()
run_shards() {  # run_shards NAME WORKERS ARGS...: every worker a shard, stopped at the budget
    local name=$1 workers=$2
    shift 2
    for ((i = 0; i < workers; i++)); do
        timeout "$(($(left) - 40))" "${NAS[@]}" "$@" --shard "$i/$workers" \
            >>"$LOGS/$name$i.log" 2>&1 &
        PIDS+=($!)
    done
}

# 1. truth seeds 0 and 1 beside the proxy cells
if [ "$(left)" -gt 90 ]; then
    PIDS=()
    run_shards truth01_ "$W01" --truth-only --truth-seeds 0 1
    run_shards proxy_ "$WP" --cells-only "${PROXIES[@]}"
    wait "${PIDS[@]}"
    step "stage 1: truth seeds 0, 1 and proxy cells"
fi
# 2. truth seed 2
if [ "$(left)" -gt 90 ]; then
    PIDS=()
    run_shards truth2_ "$W2" --truth-only --truth-seeds 2
    wait "${PIDS[@]}"
    step "stage 2: truth seed 2"
fi

# 3. score against the seeds complete for all 100 cells (never trains: checked first)
SEEDS=$("$PY" - "$CACHE" "$ARCHS" "$DATASET" <<'EOF'
import json, sys
from datadistill_apps.nas.space import sample_archs
cells = {str(a) for a in sample_archs(int(sys.argv[2]), seed=0)}
rows = [r for r in json.load(open(sys.argv[1])) if r["dataset"] == sys.argv[3]]
done = [s for s in (0, 1, 2)
        if cells <= {r["arch"] for r in rows if r["kind"] == "truth" and r["seed"] == s}]
proxies = {}
for r in rows:
    if r["kind"] != "truth" and r["seed"] == 0 and r["arch"] in cells:
        proxies.setdefault(r["variant"], set()).add(r["arch"])
print(" ".join(map(str, done)))
print("proxy cells cached:", {v: len(a) for v, a in proxies.items()}, file=sys.stderr)
EOF
)
step "complete truth seeds: ${SEEDS:-none}"
if [ "$(wc -w <<<"$SEEDS")" -ge 2 ] && [ "$(left)" -gt 30 ]; then
    # a proxy cell still missing is trained here, one at a time, until the budget stops it
    timeout "$(($(left) - 15))" "${NAS[@]}" --truth-seeds $SEEDS "${PROXIES[@]}" \
        >"$LOGS/score.log" 2>&1
    step "stage 3: scored against seeds $SEEDS (exit $?)"
fi

[ "$MPS" = 1 ] && echo quit | timeout 10 nvidia-cuda-mps-control
kill "$monitor" 2>/dev/null
step "finished"
find "$R" "$(dirname "$RESULTS")" -type f -newer /tmp/gpu_nas_truth.start ! -name '.*.lock' \
    ! -name "$(basename "$PACK")" -size -5M | sort -u | tar czf "$PACK" -T -
ls -la "$PACK"
