#!/usr/bin/env bash
# One lent GPU's 15 minutes, prepared: the open issues' points that are hours on the CPU.
#
# Measured in session 17 (one H200): under CUDA's Multi-Process Service (MPS) eight
# processes share the GPU at once; without it they take turns. So MPS starts first (a probe
# that fails turns it off) and everything independent runs side by side, each process under
# `timeout` so the pack is written inside the budget. Every job is resumable: a cell with
# complete rows is skipped, a stopped distillation resumes from its run folder, so running
# the script again (here or on the CPU) finishes what one slot left.
#
#   issue 37.3  DM at its published budget (20,000 iterations, pool 200): IPC 1, 10, 50
#               (the CPU runs IPC 1 and 10; IPC 50 is about 5 hours of this 2-core CPU)
#   issue 37.2  accuracy against pool size: pool 1000 at 2,000 iterations
#   issue 37.4  the apps with the pool at 2,000 iterations: continual's DM cells (memory 10,
#               3 class orders) and federated's one-shot DM clients
#   issue 38.1  dp-dm: the validation search, the privacy-utility curve (IPC 10 and 50,
#               epsilon 0.5-10), the audit
#   issue 39.1  the federated statistics upload (alpha 0.1 and 0.5, IPC 10 and 50, with and
#               without dp-dm at per-client epsilon 10) and the warm-started FedAvg; the
#               private upload again at q = 1 with 10 members (at the default q its noise
#               grows as sqrt(N / q): apps/federated/private.py)
#   issue 42.2  the full-data ConvNet under the quick protocol (one run first; its training
#               state after every epoch comes back in the pack and travels to the next slot)
#
#   bash experiments/gpu_next.sh [BUDGET_SECONDS] [PACK]   # default 480 s, $OUT/pack.tar.gz
#   DRY=1 bash experiments/gpu_next.sh                      # print the jobs, run nothing
# Device call: `bash experiments/gpu_stage.sh stage` first (the tree may travel 64 MiB
# only), then, with carry ["data", ".whl"] and timeout_s 540:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site:. bash experiments/gpu_next.sh 480
# and here `tar xzf <files_at>/pack.tar.gz; bash experiments/gpu_stage.sh restore`.
set -u
BUDGET=${1:-480}
PACK=${2:-${OUT:-/tmp}/pack.tar.gz}
START=$(date +%s)
export DATADISTILL_COMPILE=0 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-.} DATADISTILL_DATA=${DATADISTILL_DATA:-data}
PY=${PYTHON:-python3}
LOGS=experiments/results/gpu_next_logs/$(date +%Y-%m-%d)  # one folder a day: earlier logs stay
[ -z "${DRY:-}" ] && mkdir -p "$LOGS" && touch /tmp/gpu_next.start

left() { echo $((BUDGET - ($(date +%s) - START))); }
step() { echo "$1 after $(($(date +%s) - START)) s" | tee -a "$LOGS/steps.log"; }
pids=()
# job NAME COMMAND...: in the background, killed 30 s before the budget ends
job() {
    local name=$1
    shift
    if [ -n "${DRY:-}" ]; then
        echo "$name: $*"
        return
    fi
    timeout "$(($(left) - 30))" "$@" >"$LOGS/$name.log" 2>&1 &
    pids+=($!)
}

if [ -z "${DRY:-}" ]; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 \
        >"$LOGS/gpu.csv" 2>/dev/null &
    monitor=$!
    MPS=0
    if command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
        export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
        mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
        if timeout 10 nvidia-cuda-mps-control -d \
            && timeout 45 "$PY" -c "import torch; print(torch.ones(2, device='cuda').sum())"; then
            MPS=1
        else
            echo quit | timeout 10 nvidia-cuda-mps-control
            unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        fi
    fi
    step "MPS=$MPS"
fi

FULL_STATE=experiments/results/full_data_state  # git-ignored; gpu_stage.sh carries it
LIMIT=$(($(left) - 150))  # distillation seconds; the rest evaluates what was reached
CELLS=("$PY" experiments/cells.py --evaluate-partial --time-limit "$LIMIT")
job dm_budget50 "${CELLS[@]}" --name dm_budget --methods dm --ipc 50 --iterations 20000 \
    --set pool=200 --variant pool200
job dm_budget "${CELLS[@]}" --name dm_budget --methods dm --ipc 1 10 --iterations 20000 \
    --set pool=200 --variant pool200
job pool1000 "${CELLS[@]}" --name pool_fmnist --methods dm --ipc 10 --iterations 2000 \
    --seed 1 --set pool=1000 --variant pool1000
job continual "$PY" experiments/continual_fmnist.py --memory 10 --seeds 3 --iterations 2000 \
    --methods dm --strategies distill-recall distill-replay
job federated "$PY" experiments/federated_fmnist.py --iterations 2000 --only summary
job stats bash -c "$PY experiments/federated_stats.py && $PY experiments/federated_stats.py \
    --client-epsilons 10 --sample-rate 1 --pool 10 --warm-rounds 0"
job privacy_dm bash -c "$PY experiments/privacy_dm.py search --epsilons 1 10 --pools 20 50 200 \
    --widths 32 128 --time-limit $LIMIT && $PY experiments/privacy_dm.py curve --ipc 10 50 \
    --epsilons 0.5 1 2 5 10 --time-limit $LIMIT && $PY experiments/privacy_dm.py audit \
    --audit-epsilons 1 10 && $PY experiments/privacy_dm.py plot"
job full_data "$PY" experiments/full_data.py --epochs 300 --runs 1 --device cuda \
    --resume-dir "$FULL_STATE"
[ -n "${DRY:-}" ] && exit 0

wait "${pids[@]}"
step "all jobs"
[ "$MPS" = 1 ] && echo quit | timeout 10 nvidia-cuda-mps-control
kill "$monitor" 2>/dev/null
# one file back, whatever finished; big run folders stay there (their rows and summaries
# under 5 MB come back)
find experiments/results -type f -newer /tmp/gpu_next.start ! -name '.*.lock' -size -5M |
    tar czf "$PACK" -T -
ls -la "$PACK"
