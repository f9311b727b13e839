#!/usr/bin/env bash
# Issue 37, points 2 and 3, as resumable cells (experiments/cells.py skips finished cells and
# resumes a stopped distillation from its run folder): run again after any stop.
#
#   2. accuracy against pool size: Fashion-MNIST IPC 10, 2,000 iterations, seed 1, quick
#      protocol (5 runs), pool 50 / 200 / 1000 and fresh networks; rows and bars in
#      experiments/results/pool_fmnist.{json,png}.
#   3. DM at its published budget (20,000 iterations) with the chosen pool (POOL, default 200)
#      at IPC 1, 10 and 50; rows (with wall time) in experiments/results/dm_budget.json.
#
#   bash experiments/pool_cells.sh [sizes|budget|all] [TIME_LIMIT_SECONDS]
# Measured on this 2-core CPU (session of 2026-12-07, experiments/pool_speed.py): a filled
# pool's step at IPC 10 costs the synthetic side only; the 20k-iteration cells are still
# hours each on 2 cores, so they belong on a lent GPU or a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
limit=${2:-}
pool=${POOL:-200}
py=${PYTHON:-.venv/bin/python}
extra=()
[ -n "$limit" ] && extra=(--time-limit "$limit")

if [ "$what" = sizes ] || [ "$what" = all ]; then
  for n in 50 200 1000; do  # done here: 50 and 200 (rows in pool_fmnist.json)
    "$py" experiments/cells.py --name pool_fmnist --methods dm --ipc 10 --iterations 2000 \
      --seed 1 --set "pool=$n" --variant "pool$n" "${extra[@]}"
  done
  "$py" experiments/cells.py --name pool_fmnist --methods dm --ipc 10 --iterations 2000 \
    --seed 1 --set pool=0 --variant fresh "${extra[@]}"
fi
if [ "$what" = budget ] || [ "$what" = all ]; then
  "$py" experiments/cells.py --name dm_budget --methods dm --ipc 1 10 50 --iterations 20000 \
    --set "pool=$pool" --variant "pool$pool" "${extra[@]}"
fi
