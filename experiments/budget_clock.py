"""How fair is a CPU-seconds budget when other work shares the cores? One run, same threads.

`make bench-budget` gives every method the same seconds of distillation steps. Counted on
the wall clock, those seconds shrink whenever anything else runs on the machine (a test, a
second sweep), by however much it takes; counted as the process's CPU time
(`budget_clock: cpu`), they do not, except for what sharing costs a CPU second (caches,
memory bandwidth). This measures both: each method distils Fashion-MNIST at IPC 10 for
`--budget` CPU seconds on one thread, first alone, then beside `--neighbours` busy
single-thread processes (matrix products, as another distillation would be), and reports
the iterations reached and CPU seconds an iteration; the ratio contended / alone is how far
a CPU budget drifts, and wall seconds / CPU seconds what a wall-clock budget would have lost.

    python experiments/budget_clock.py [--methods dm dsa] [--budget 45] [--neighbours 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from datadistill import atomic
from datadistill import data as datasets
from datadistill.distill import run
from datadistill.loop import RunOptions
from datadistill.results import check_row, command_line

RESULTS = Path("experiments/results/budget_clock.json")
BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True: a @ a\n"


def distil(method: str, data, ipc: int, budget: float, variant: str, **extra) -> dict:
    """One run of `budget` CPU seconds as a result row (sec_per_iter: CPU seconds)."""
    options = RunOptions(iterations=10**6, budget=budget, budget_clock="cpu", progress=False)
    summary = run(method, data, ipc, options=options)
    info = summary.extra["run"]
    return {
        "method": method, "dataset": data.spec.name, "ipc": ipc,
        "iterations": info["iterations"], "arch": "convnet", "runs": 0, "acc_mean": None,
        "acc_std": None, "images": summary.n, "stored_bytes": summary.stored_bytes,
        "sec_per_iter": info["cpu_seconds"] / info["iterations"],
        "peak_mem_mb": info["peak_mem_mb"], "command": command_line(), "variant": variant,
        "budget_seconds": budget, "budget_clock": "cpu", "distill_cpu_seconds": info["cpu_seconds"],
        "distill_seconds": info["seconds"], "threads": torch.get_num_threads(),
        "machine_cpus": len(os.sched_getaffinity(0)), **extra,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--methods", nargs="+", default=["dm", "dsa"])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--budget", type=float, default=45.0, help="CPU seconds a run")
    p.add_argument("--neighbours", type=int, default=3, help="busy processes beside a run")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = datasets.load(args.dataset)
    rows = []
    for method in args.methods:
        run(method, data, args.ipc, options=RunOptions(iterations=2, progress=False))  # compile
        alone = distil(method, data, args.ipc, args.budget, "alone")
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.neighbours)]
        try:
            shared = distil(method, data, args.ipc, args.budget, f"beside{args.neighbours}busy")
        finally:
            for proc in busy:
                proc.kill()
                proc.wait()
        shared["neighbours"] = args.neighbours
        shared["cpu_per_iter_ratio"] = shared["sec_per_iter"] / alone["sec_per_iter"]
        shared["wall_per_cpu"] = shared["distill_seconds"] / shared["distill_cpu_seconds"]
        rows += [check_row(alone), check_row(shared)]
        print(
            f"{method}: {alone['iterations']} iterations alone, {shared['iterations']} beside "
            f"{args.neighbours} busy processes; CPU s/iter x{shared['cpu_per_iter_ratio']:.2f}; "
            f"a wall-clock budget would have run {1 / shared['wall_per_cpu']:.2f} of it",
            flush=True,
        )
    atomic.write_bytes(args.results, (json.dumps(rows, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
