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
from datadistill.results import command_line

RESULTS = Path("experiments/results/budget_clock.json")
BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True: a @ a\n"


def distil(method: str, data, ipc: int, budget: float) -> dict:
    options = RunOptions(iterations=10**6, budget=budget, budget_clock="cpu", progress=False)
    summary = run(method, data, ipc, options=options)
    info = summary.extra["run"]
    return {
        "iterations": info["iterations"],
        "cpu_seconds": info["cpu_seconds"],
        "wall_seconds": info["seconds"],
        "cpu_sec_per_iter": info["cpu_seconds"] / info["iterations"],
    }


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
        alone = distil(method, data, args.ipc, args.budget)
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.neighbours)]
        try:
            shared = distil(method, data, args.ipc, args.budget)
        finally:
            for proc in busy:
                proc.kill()
                proc.wait()
        row = {
            "method": method,
            "dataset": args.dataset,
            "ipc": args.ipc,
            "budget_cpu_seconds": args.budget,
            "neighbours": args.neighbours,
            "threads": torch.get_num_threads(),
            "machine_cpus": len(os.sched_getaffinity(0)),
            "alone": alone,
            "shared": shared,
            "iterations_ratio": shared["iterations"] / alone["iterations"],
            "cpu_per_iter_ratio": shared["cpu_sec_per_iter"] / alone["cpu_sec_per_iter"],
            "wall_per_cpu_shared": shared["wall_seconds"] / shared["cpu_seconds"],
            "command": command_line(),
        }
        rows.append(row)
        print(
            f"{method}: {alone['iterations']} iterations alone, {shared['iterations']} beside "
            f"{args.neighbours} busy processes (x{row['iterations_ratio']:.2f}); CPU s/iter "
            f"x{row['cpu_per_iter_ratio']:.2f}; a wall-clock budget would have run "
            f"{1 / row['wall_per_cpu_shared']:.2f} of it",
            flush=True,
        )
    atomic.write_bytes(args.results, (json.dumps(rows, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
