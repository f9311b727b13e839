#!/usr/bin/env bash
# Every family's Fashion-MNIST cells at once on one lent GPU, inside a fixed wall-clock budget.
#
# Each cell is a separate `experiments/cells.py` process (the GPU is mostly idle for these small
# networks, so processes share it well); each distillation stops at its --time-limit, is
# evaluated as it stands (--evaluate-partial: its rows record the iterations reached) and keeps
# its checkpoint, so `experiments/cells.py` with the same arguments resumes it anywhere.
# MTT and TESLA wait for four experts of 16 epochs, trained by four processes into one folder.
#
#   bash experiments/gpu_batch.sh [BUDGET_SECONDS]     # 2026-11-26: one H200, BUDGET 545
set -u
BUDGET=${1:-545}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 PYTHONPATH=.
export DATADISTILL_EXPERTS=${DATADISTILL_EXPERTS:-/tmp/experts}
PY=${PYTHON:-python3}
LOGS=experiments/results/gpu_batch_logs
mkdir -p "$LOGS"

left() { echo $((BUDGET - ($(date +%s) - START))); }
# job NAME SECONDS_FOR_DISTILLING ARGS...: a cells.py process, killed at the budget's end
pids=()
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

# issue 2: the engine (DM to 10k iterations; the coresets at IPC 50)
job dm10 300 --name engine_fmnist --methods dm --ipc 10 --iterations 10000
job dm50 300 --name engine_fmnist --methods dm --ipc 50 --iterations 10000
job core50 0 --name engine_fmnist --methods random herding kcenter --ipc 50
# issue 3: gradient matching (IPC 1: DC's 1000 iterations; IPC 10: DC's 1000 x outer_loop 10)
for m in dc dsa dcc; do
    job "${m}1" 300 --name gradient_fmnist --methods "$m" --ipc 1 --iterations 1000
    job "${m}10" 360 --name gradient_fmnist --methods "$m" --ipc 10 --iterations 10000
done
job idc1 360 --name gradient_fmnist --methods idc --ipc 1
job idc10 360 --name gradient_fmnist --methods idc --ipc 10
# issue 5: meta-model matching
job kip 200 --name meta_fmnist --methods kip --ipc 1 10 --iterations 3000
for ipc in 1 10; do
    job "rfad$ipc" 360 --name meta_fmnist --methods rfad --ipc "$ipc"
    job "dd$ipc" 360 --name meta_fmnist --methods dd --ipc "$ipc"
    job "frepo$ipc" 360 --name meta_fmnist --methods frepo --ipc "$ipc" --iterations 50000
done
# issue 4: experts, then MTT and TESLA with what time is left
experts=()
for i in 0 1 2 3; do
    timeout "$(left)" "$PY" -m datadistill.cli experts --dataset fashion-mnist --num 4 --epochs 16 \
        --only "$i" --quiet >"$LOGS/expert$i.log" 2>&1 &
    experts+=($!)
done
wait "${experts[@]}"
limit=$(($(left) - 120))
for m in mtt tesla; do
    for ipc in 1 10; do
        job "$m$ipc" "$limit" --name trajectory_fmnist --methods "$m" --ipc "$ipc"
    done
done
wait "${pids[@]}"
kill "$monitor" 2>/dev/null
echo "finished after $(($(date +%s) - START)) s"
