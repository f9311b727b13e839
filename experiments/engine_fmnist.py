"""Engine benchmark on Fashion-MNIST: random, herding, k-center and DM at IPC 1, 10, 50.

Quick evaluation protocol: ConvNet, 300 epochs, DSA, 5 fresh models per summary.
Resumable: finished cells are read back from the results file; an interrupted DM run
resumes from its checkpoint under experiments/results/engine_fmnist/.

    python experiments/engine_fmnist.py [--ipc 1 10 50] [--dm-iterations 600]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datadistill import data as datasets
from datadistill.bench.cells import Cell, run_cell
from datadistill.distill import resolve_device
from datadistill.evaluate import EvalConfig
from datadistill.plots import accuracy_curves
from datadistill.results import load_rows, table
from datadistill.train import QUICK

RESULTS = Path("experiments/results/engine_fmnist.json")
# summaries, grids, metrics and checkpoints: committed, so any machine can resume a cell
RUNS = Path("experiments/results/engine_fmnist")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--methods", nargs="+", default=["random", "herding", "kcenter", "dm"])
    p.add_argument("--dm-iterations", type=int, default=600)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--time-limit", type=float, help="seconds per DM run before it checkpoints")
    args = p.parse_args()

    data = datasets.load("fashion-mnist")
    device = resolve_device(args.device)
    config = EvalConfig(archs=("convnet",), runs=args.runs, train=QUICK)
    for ipc in args.ipc:
        for method in args.methods:
            iters = args.dm_iterations if method == "dm" else None
            rows = run_cell(
                Cell(method, ipc, iterations=iters),
                data,
                config=config,
                results=RESULTS,
                runs_dir=RUNS,
                device=device,
                time_limit=args.time_limit,
            )
            print(
                table(rows) if rows else f"{method} ipc{ipc}: stopped early, run again to resume",
                flush=True,
            )
    rows = [r for r in load_rows(RESULTS) if r["eval_epochs"] == QUICK.epochs]
    print(table(sorted(rows, key=lambda r: (r["ipc"], r["method"]))))
    accuracy_curves(rows, RESULTS.with_suffix(".png"), title="Fashion-MNIST, ConvNet, 300 epochs")


if __name__ == "__main__":
    main()
