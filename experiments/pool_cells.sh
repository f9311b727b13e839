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
#   optimiser. does another image optimiser or a schedule reach DM's accuracy in fewer
#      iterations? IPC 10, pool 200, judged on 1,000 held-out training images a class (never
#      the test set): SGD at DM's rate 1 for 2,000 and 5,000 iterations (one run, continued),
#      against 2,000 iterations of SGD with a cosine schedule, SGD at rate 3, and Adam at
#      1e-2 and 3e-2; rows in experiments/results/dm_optimiser.json.
#
#   bash experiments/pool_cells.sh [sizes|budget|optimiser|all] [TIME_LIMIT_SECONDS]
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
if [ "$what" = optimiser ] || [ "$what" = all ]; then
  cell=("$py" experiments/cells.py --name dm_optimiser --methods dm --ipc 10 --seed 1
        --validation 1000 "${extra[@]}")
  for its in 2000 5000; do
    "${cell[@]}" --iterations "$its" --set "pool=$pool" --variant sgd-1
  done
  "${cell[@]}" --iterations 2000 --set "pool=$pool" lr_schedule=cosine --variant sgd-1-cosine
  "${cell[@]}" --iterations 2000 --set "pool=$pool" lr_img=3 --variant sgd-3
  for lr in 1e-2 3e-2; do
    "${cell[@]}" --iterations 2000 --set "pool=$pool" optimizer=adam "lr_img=$lr" \
      --variant "adam-$lr"
  done
fi
