#!/usr/bin/env bash
# One lent GPU's 15 minutes, prepared: the open points that need a GPU, highest first.
#
# Measured in session 11 (2026-11-27, one H200): the NAS ground truth trains a cell (C=8,
# N=1, 12 epochs on 60,000 images) in 40-113 s when eight processes share the card (mean
# 72 s) and the card reads 80% busy: the processes take turns (time slicing), so eight of
# them train about one cell every 11 s, and the 40 cells need about 450 s. CUDA's
# Multi-Process Service (MPS) lets their small kernels run side by side; this script tries
# it first and goes on without it when a probe fails. Everything lands in the cell cache
# (experiments/results/nas_fmnist_cells.json), so whatever finishes is kept, and all it
# wrote is packed into one tarball ($PACK; the device tool returns at most 8 files):
# unpack it in the repository root here (`tar xzf pack.tar.gz`).
#
#   1. issue 8.1  the NAS ground truth in eight shards, each cell cached as it finishes.
#   2. issue 8.1  the proxies' cells (200 steps a cell), in shards, most wanted first:
#                 alongside the ground truth under MPS, after it without. The scores
#                 (rho, tau, top-5, plots) come from the cache in a last run on any machine:
#                 `python experiments/nas_fmnist.py`.
#   3. issue 6    with the time left, LinBa on Fashion-MNIST at IPC 1.
#
#   bash experiments/gpu_next.sh [BUDGET_SECONDS] [PACK]   # default 480 s, $OUT/pack.tar.gz
# Device call (apps/nas needs nas-bench-201, absent there: carry its wheel in .whl/; the
# data in data/; move experiments/results/*/ aside first, the tree may travel 64 MiB only,
# but keep the summaries the proxies read):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site:. bash experiments/gpu_next.sh 480
set -u
BUDGET=${1:-480}
PACK=${2:-${OUT:-/tmp}/pack.tar.gz}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-.} DATADISTILL_DATA=${DATADISTILL_DATA:-data}
PY=${PYTHON:-python3}
LOGS=experiments/results/gpu_next_logs/$(date +%Y-%m-%d)  # one folder a run: earlier logs stay
mkdir -p "$LOGS"
touch /tmp/gpu_next.start

left() { echo $((BUDGET - ($(date +%s) - START))); }
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 \
    >"$LOGS/gpu.csv" 2>/dev/null &
monitor=$!

# MPS, if the machine allows it: a probe that hangs or fails turns it off again.
MPS=0
if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if timeout 10 nvidia-cuda-mps-control -d \
        && timeout 45 "$PY" -c "import torch; print(torch.ones(2, device='cuda').sum().item())"; then
        MPS=1
    else
        echo quit | timeout 10 nvidia-cuda-mps-control
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
fi
echo "MPS=$MPS after $(($(date +%s) - START)) s" | tee "$LOGS/mps.log"

truth() {
    local pids=() i
    for i in 0 1 2 3 4 5 6 7; do
        timeout "$(($(left) - 20))" "$PY" experiments/nas_fmnist.py --truth-only \
            --shard "$i/8" --quiet >"$LOGS/truth$i.log" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
}

# Proxy groups, most wanted first: the IPC-50 summary and its random subset (acceptance 2),
# cheap training, then IPC 10.
GROUPS_=("--methods dm --ipc 50 --baselines random" "--methods --ipc 50 --baselines cheap"
    "--methods dm --ipc 10 --baselines random" "--methods dsa mtt --ipc 10 --baselines")
proxies() {
    local shards=$1 pids=() i
    for ((i = 0; i < shards; i++)); do
        (
            for group in "${GROUPS_[@]}"; do
                [ "$(left)" -gt 30 ] || break
                # shellcheck disable=SC2086
                timeout "$(($(left) - 20))" "$PY" experiments/nas_fmnist.py --cells-only \
                    --shard "$i/$shards" --quiet $group >>"$LOGS/proxy$i.log" 2>&1
            done
        ) &
        pids+=($!)
    done
    wait "${pids[@]}"
}

if [ "$MPS" = 1 ]; then
    truth &
    t=$!
    proxies 6
    wait "$t"
else
    truth
    [ "$(left)" -gt 60 ] && proxies 8
fi
echo "NAS cells done after $(($(date +%s) - START)) s" | tee -a "$LOGS/mps.log"

if [ "$(left)" -gt 120 ]; then
    timeout "$(($(left) - 15))" "$PY" experiments/cells.py --name factorised_fmnist \
        --dataset fashion-mnist --iterations 60 --time-limit "$(($(left) - 90))" \
        --evaluate-partial --methods linba --ipc 1 >>"$LOGS/factorised.log" 2>&1
fi
[ "$MPS" = 1 ] && echo quit | timeout 10 nvidia-cuda-mps-control
kill "$monitor" 2>/dev/null
echo "finished after $(($(date +%s) - START)) s"
find experiments/results -type f -newer /tmp/gpu_next.start ! -name '.*.lock' | tar czf "$PACK" -T -
ls -la "$PACK"
