#!/usr/bin/env bash
# One lent GPU's 15 minutes, prepared: the open points that need a GPU, highest first.
#
# Lesson of session 2 (gpu_batch.sh): 25 processes on one card slowed each about 40x, so
# this runs at most seven at once (16 CPU cores there). Every job keeps what it finished:
# cells resume from their checkpoints and are evaluated as they stand when their
# --time-limit ends (--evaluate-partial); NAS cells are cached one by one.
#
#   1. issue 4.1  four Fashion-MNIST experts of 8 epochs (TESLA IPC 1 reads epochs up to 6),
#                 then TESLA IPC 1 onward from its 37-iteration checkpoint (63.78%, below
#                 DSA's 69.02) for the time left. The experts come back too, so this CPU
#                 can go on with the same command.
#   2. issue 2.2  DM IPC 10 from its 10,000-iteration checkpoint toward 20,000 (81.27% at
#                 10k; 0.017 s/iter alone on an H200).
#   3. issue 8.1  the NAS ground truth (40 cells, 12 epochs on 60,000 images each; about
#                 29 CPU-hours here) in three shards, each cell cached as it finishes.
#
#   bash experiments/gpu_next.sh [BUDGET_SECONDS]      # default 490: leaves time to pack
#   2026-11-27 (session 11): one H200 through the device tool, data/ and experts/ carried:
#     bash experiments/gpu_next.sh 490 && tar the outputs into $OUT (see the note)
set -u
BUDGET=${1:-490}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1 PYTHONPATH=.
export DATADISTILL_DATA=${DATADISTILL_DATA:-data} DATADISTILL_EXPERTS=${DATADISTILL_EXPERTS:-experts}
PY=${PYTHON:-python3}
LOGS=experiments/results/gpu_next_logs
mkdir -p "$LOGS"

left() { echo $((BUDGET - ($(date +%s) - START))); }
pids=()
# job NAME SECONDS_FOR_DISTILLING ARGS...: one cells.py process, killed at the budget's end
job() {
    local name=$1 limit=$2
    shift 2
    timeout "$(left)" "$PY" experiments/cells.py --dataset fashion-mnist --evaluate-partial \
        --time-limit "$limit" "$@" >"$LOGS/$name.log" 2>&1 &
    pids+=($!)
}

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 \
    >"$LOGS/gpu.csv" 2>/dev/null &
monitor=$!

# 1. experts in two processes, then TESLA with what is left (90 s kept for its evaluation)
experts=()
for only in "0 2" "1 3"; do
    timeout "$(left)" "$PY" -m core.cli experts --dataset fashion-mnist --num 4 --epochs 8 \
        --only $only --quiet >"$LOGS/experts${only// /}.log" 2>&1 &
    experts+=($!)
done
# 2. DM
job dm10 $((BUDGET - 120)) --name engine_fmnist --methods dm --ipc 10 --iterations 20000
# 3. NAS ground truth
for i in 0 1 2; do
    timeout "$(left)" "$PY" experiments/nas_fmnist.py --truth-only --shard "$i/3" --quiet \
        --results "experiments/results/nas_fmnist_shard$i.json" >"$LOGS/nas$i.log" 2>&1 &
    pids+=($!)
done
wait "${experts[@]}"
job tesla1 $(($(left) - 90)) --name trajectory_fmnist --methods tesla --ipc 1 --iterations 5000
wait "${pids[@]}"
kill "$monitor" 2>/dev/null
echo "finished after $(($(date +%s) - START)) s"
