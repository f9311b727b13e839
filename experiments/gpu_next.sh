#!/usr/bin/env bash
# One lent GPU's 15 minutes, prepared: the open points that still need a GPU, highest first.
#
# Measured in session 17 (2026-11-28, one H200): under CUDA's Multi-Process Service (MPS)
# eight processes trained the NAS ground truth (40 cells, C=8, N=1, 12 epochs on 60,000
# images; 35 s a cell each) while six trained 280 proxy cells, all in 210 s; without MPS
# (session 11) the processes take turns and eight of them trained one cell every 11 s.
# So this script starts MPS first (a probe that fails turns it off) and runs side by side
# whatever is independent. Everything it writes is packed into one tarball ($PACK; the
# device tool returns at most 8 files): unpack it in the repository root here.
#
#   1. issue 8.1  Fashion-MNIST experts (41 epochs, MTT's IPC-50 start epoch 40 + 1), then
#                 MTT at IPC 50 with the table's settings (time-limited) and its NAS proxy
#                 cells, in eight shards (session 21 ran MTT IPC 50 on the CPU with start 15
#                 and batch_syn 100 instead: variant start15-batch100).
#   2. issue 6    LinBa at IPC 10 resumed from its committed checkpoint (24 of 60
#                 iterations) alongside the experts (HaBa at IPC 10 ran on the CPU, session 21).
#   0. issue 11   beside everything: the transfer cells (AlexNet, VGG-11, ResNet-18 on every
#                 IPC-10 summary, 5 runs; the CPU ran 1 run a cell, or none), and KFS at
#                 IPC 10 with its new decoder rate (the old run's pixels ran away).
#   3. issue 8.2  with the time left, the proxies at lr 0.1 (`--proxy-lr 0.1`), the
#                 IPC-10 and DSA/MTT IPC-50 sets the CPU did not run.
#
#   bash experiments/gpu_next.sh [BUDGET_SECONDS] [PACK]   # default 480 s, $OUT/pack.tar.gz
# Device call: `bash experiments/gpu_stage.sh stage` first (the tree may travel 64 MiB
# only: it moves experiments/results/*/ aside but for what this script reads, and fills
# data/ and .whl/ with Fashion-MNIST and nas-bench-201, absent there), then, with
# carry ["data", ".whl", "generators"] and timeout_s 540:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site:. bash experiments/gpu_next.sh 480
# and here `tar xzf /work/.device/N/pack.tar.gz; bash experiments/gpu_stage.sh restore`.
set -u
BUDGET=${1:-480}
PACK=${2:-${OUT:-/tmp}/pack.tar.gz}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-.} DATADISTILL_DATA=${DATADISTILL_DATA:-data}
export DATADISTILL_EXPERTS=${DATADISTILL_EXPERTS:-/tmp/experts}
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
echo "MPS=$MPS after $(($(date +%s) - START)) s" | tee "$LOGS/steps.log"
step() { echo "$1 after $(($(date +%s) - START)) s" | tee -a "$LOGS/steps.log"; }
CELLS="$PY experiments/cells.py --dataset fashion-mnist --evaluate-partial"

# issue 11: the transfer cells the CPU left or ran with one model (AlexNet, VGG-11,
# ResNet-18), at the protocol's 5 runs, four workers sharing the cells through their locks
tpids=()
for i in 0 1 2 3; do
    timeout "$(($(left) - 30))" "$PY" experiments/transfer_fmnist.py --heavy-runs 5 \
        --time-limit "$(($(left) - 120))" >"$LOGS/transfer$i.log" 2>&1 &
    tpids+=($!)
done

# LinBa IPC 10 resumes beside the experts (its own time limit, then its evaluation)
timeout "$(($(left) - 20))" $CELLS --name factorised_fmnist --iterations 60 --methods linba \
    --ipc 10 --time-limit 240 >"$LOGS/linba10.log" 2>&1 &
linba=$!

# KFS at IPC 10 with its new decoder rate (0.001; 0.1 ran away): 1,560 decoded images make
# its 5 evaluations about 3 hours on the CPU, minutes here
timeout "$(($(left) - 20))" $CELLS --name factorised_fmnist --iterations 60 --methods kfs \
    --ipc 10 >"$LOGS/kfs10.log" 2>&1 &
kfs=$!

pids=()
for i in 0 1 2 3 4 5 6 7; do
    timeout 220 "$PY" -m datadistill.cli experts --dataset fashion-mnist --num 8 --epochs 41 \
        --only "$i" --quiet >"$LOGS/experts$i.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
step "experts"

# MTT IPC 50, then its proxy cells
(
    timeout "$(($(left) - 60))" $CELLS --name trajectory_fmnist --iterations 5000 --methods mtt \
        --ipc 50 --time-limit "$(($(left) - 150))" >"$LOGS/mtt50.log" 2>&1
    step "mtt50"
    shards=()
    for i in 0 1 2 3 4 5 6 7; do
        timeout "$(($(left) - 15))" "$PY" experiments/nas_fmnist.py --cells-only --quiet \
            --shard "$i/8" --methods mtt --ipc 50 --baselines >"$LOGS/proxy$i.log" 2>&1 &
        shards+=($!)
    done
    wait "${shards[@]}"
    step "mtt50 proxy cells"
) &
mtt=$!
wait "$mtt" "$linba"

# the proxies at lr 0.1 with the time left
if [ "$(left)" -gt 60 ]; then
    shards=()
    for i in 0 1 2 3 4 5 6 7; do
        timeout "$(($(left) - 15))" "$PY" experiments/nas_fmnist.py --cells-only --quiet \
            --shard "$i/8" --proxy-lr 0.1 >>"$LOGS/proxy_lr$i.log" 2>&1 &
        shards+=($!)
    done
    wait "${shards[@]}"
    step "lr-0.1 proxy cells"
fi
wait "${tpids[@]}" "$kfs"
step "transfer, kfs"
[ "$MPS" = 1 ] && echo quit | timeout 10 nvidia-cuda-mps-control
kill "$monitor" 2>/dev/null
echo "finished after $(($(date +%s) - START)) s"
# one file back, whatever finished; big summaries stay there (their checkpoints come back)
find experiments/results -type f -newer /tmp/gpu_next.start ! -name '.*.lock' -size -5M |
    tar czf "$PACK" -T -
ls -la "$PACK"
