#!/usr/bin/env bash
# The next lent GPU's 15 minutes, prepared: the open points that need a GPU, highest first.
#
# Lesson of session 2 (gpu_batch.sh): 25 processes on one card slowed each about 40x, so
# this runs at most five at once. Every cell resumes from its committed checkpoint and is
# evaluated as it stands when its --time-limit ends (--evaluate-partial), so a cut-off run
# still gives rows and a later run (GPU or CPU) continues it with the same command.
#
#   1. issue 2.2  DM IPC 10 from its 10,000-iteration checkpoint to 20,000 (81.27% at 10k;
#                 0.017 s/iter alone on an H200: about 3 min) and DM IPC 50 onward from 442.
#   2. issue 6.1  DM, KFS, HaBa-DM at the IPC-1 and IPC-10 byte budgets toward 1,000 its
#                 (100 s each, one after another in two processes), and LinBa's first
#                 IPC-1 iterations (150 unrolled steps over 260 images: about 20 min an
#                 iteration on this CPU, 8 s a step in bptt_memory.json).
#   3. issue 3.1  DSA IPC 10 onward (the gradient family's published-figure gap).
#
#   bash experiments/gpu_next.sh [BUDGET_SECONDS]      # default 480: leaves time to copy back
set -u
BUDGET=${1:-480}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1 PYTHONPATH=.
PY=${PYTHON:-python3}
LOGS=experiments/results/gpu_next_logs
mkdir -p "$LOGS"

left() { echo $((BUDGET - ($(date +%s) - START))); }
pids=()
# job NAME SECONDS_FOR_DISTILLING ARGS...: one cells.py process, killed at the budget's end
job() {
    local name=$1 limit=$2
    shift 2
    timeout "$(left)" "$PY" experiments/cells.py --evaluate-partial --time-limit "$limit" "$@" \
        >"$LOGS/$name.log" 2>&1 &
    pids+=($!)
}

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 \
    >"$LOGS/gpu.csv" 2>/dev/null &
monitor=$!

job dm10 240 --name engine_fmnist --methods dm --ipc 10 --iterations 20000
job dm50 240 --name engine_fmnist --methods dm --ipc 50 --iterations 10000
job fact1 90 --name factorised_fmnist --methods dm kfs haba-dm linba --ipc 1 --iterations 1000
job fact10 100 --name factorised_fmnist --methods dm kfs haba-dm --ipc 10 --iterations 1000
job dsa10 240 --name gradient_fmnist --methods dsa --ipc 10 --iterations 10000
wait "${pids[@]}"
kill "$monitor" 2>/dev/null
echo "finished after $(($(date +%s) - START)) s"
