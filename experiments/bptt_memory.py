"""Back-propagation through time, whole graph against recomputed: memory and time of one
LinBa iteration on Fashion-MNIST as the number of unrolled inner steps grows (issue 6).

LinBa at the IPC-1 byte budget hallucinates 26 images per class, and its default unrolls
150 steps of SGD (momentum 0.9) over all 260 of them on a ConvNet-3 (width 128). Kinds:
  graph        autograd keeps every step's graph for the double backward (DD's way);
  recompute    `BackpropThroughTime(recompute=True)`: no graph across steps, each step's
               rebuilt on the way back from its kept state (datadistill.objectives.unroll);
  recompute-s4 the same keeping at most 4 states (revolve's schedule recomputes the rest).
All three give the same gradient (tests/test_meta.py). Each setting runs in a fresh process
with glibc's mmap threshold fixed at 128 KiB (as experiments/trajectory_memory.py), so the
peak resident memory above the level before the iteration is the memory it holds;
`saved_mb` is the peak bytes autograd held for backward (datadistill.profile.peak_saved_bytes).

    python experiments/bptt_memory.py [--steps 2 4 8 16] [--kinds graph recompute ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

os.environ["DATADISTILL_COMPILE"] = "0"  # eager: saved-tensor hooks see the real graph

from datadistill import data as datasets  # noqa: E402
from datadistill import methods  # noqa: E402
from datadistill.plots import save  # noqa: E402
from datadistill.profile import peak_rss_bytes, peak_saved_bytes, reset_peak_rss, rss_bytes  # noqa: E402
from datadistill.results import append_rows, command_line, load_rows  # noqa: E402

RESULTS = Path("experiments/results/bptt_memory.json")
KINDS = {
    "graph": {"recompute": False},
    "recompute": {"recompute": True, "snapshots": 0},
    "recompute-s4": {"recompute": True, "snapshots": 4},
}
EXACT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "DATADISTILL_MALLOC": "0"}


def measure_one(kind: str, steps: int) -> dict:
    """One setting in this (fresh) process: one outer iteration of `linba` at IPC 1."""
    data = datasets.load("fashion-mnist")
    method = methods.get("linba")
    cfg = method.config(data.spec.name, {"inner_steps": steps, **KINDS[kind]})
    param, objective = method.build(cfg, data, 1, torch.Generator().manual_seed(0))
    tensors = [p for group in param.param_groups() for p in group["params"]]

    def iteration() -> None:
        for p in tensors:
            p.grad = None
        objective.loss(param, data, torch.Generator().manual_seed(1), 0).backward()

    reset_peak_rss()
    base = rss_bytes()
    started = time.perf_counter()
    saved = peak_saved_bytes(iteration)
    seconds = time.perf_counter() - started
    grad_norm = float(sum(p.grad.double().norm() ** 2 for p in tensors) ** 0.5)
    return {
        "seconds": seconds,
        "peak_mb": max(peak_rss_bytes() - base, 0) / 2**20,
        "saved_mb": saved / 2**20,
        "stored_bytes": param.stored_bytes(),
        "images": param.images_per_class * data.spec.num_classes,
        "grad_norm": grad_norm,
    }


def run_one(kind: str, steps: int) -> dict:
    env = {**os.environ, **EXACT_MALLOC}
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, str(steps)],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    fig, (mem, sec) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, kind in enumerate(dict.fromkeys(r["kind"] for r in rows)):
        rs = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["inner_steps"])
        steps = [r["inner_steps"] for r in rs]
        style = {"marker": "os^"[i % 3], "color": f"C{i}"}
        mem.plot(steps, [r["peak_mem_mb"] for r in rs], **style, label=f"{kind}: peak RSS")
        mem.plot(steps, [r["saved_mb"] for r in rs], **style, ls="--", mfc="none")
        sec.plot(steps, [r["sec_per_iter"] for r in rs], **style, label=kind)
    mem.set_yscale("log")
    mem.set_ylabel("MB for one outer iteration (log scale)")
    mem.set_title("solid: peak RSS; dashed: graph saved for backward", fontsize=9)
    sec.set_ylabel("seconds per outer iteration")
    for ax in (mem, sec):
        ax.set_xlabel("unrolled inner steps")
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8)
    fig.suptitle("LinBa, Fashion-MNIST IPC-1 bytes (260 images), ConvNet-3: BPTT memory")
    save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--graph-max", type=int, default=8, help="longest unroll for `graph`")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--one", nargs=2, metavar=("KIND", "STEPS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return
    command, rows = command_line(), []
    for steps in args.steps:
        for kind in args.kinds:
            if kind == "graph" and steps > args.graph_max:
                continue  # its graph grows by about a GB a step: keep the machine alive
            m = run_one(kind, steps)
            rows.append({
                "method": "linba", "kind": kind, "dataset": "fashion-mnist", "ipc": 1,
                "iterations": 1, "arch": "convnet", "runs": 0, "acc_mean": None,
                "acc_std": None, "images": m["images"], "stored_bytes": m["stored_bytes"],
                "sec_per_iter": m["seconds"], "peak_mem_mb": m["peak_mb"],
                "saved_mb": m["saved_mb"], "grad_norm": m["grad_norm"],
                "command": command, "variant": f"{kind} inner_steps={steps}",
                "inner_steps": steps, "threads": torch.get_num_threads(),
                "malloc": "MALLOC_MMAP_THRESHOLD_=131072",
            })  # fmt: skip
            print(f"{kind:14s} {steps:3d} steps: {m}", flush=True)
    append_rows(RESULTS, rows)
    by = {(r["kind"], r["inner_steps"]): r for r in rows}
    print(
        f"{'steps':>5} {'kind':14s} {'peak MB':>9} {'saved MB':>9} {'s/iter':>7} {'vs graph':>16}"
    )
    for r in rows:
        g = by.get(("graph", r["inner_steps"]))
        ratio = (
            f"{r['peak_mem_mb'] / g['peak_mem_mb']:.2f}x mem "
            f"{r['sec_per_iter'] / g['sec_per_iter']:.2f}x t"
            if g and r is not g
            else ""
        )
        print(
            f"{r['inner_steps']:5d} {r['kind']:14s} {r['peak_mem_mb']:9.0f} {r['saved_mb']:9.0f} "
            f"{r['sec_per_iter']:7.2f} {ratio:>16}"
        )
    plot(load_rows(RESULTS), RESULTS.with_suffix(".png"))


if __name__ == "__main__":
    main()
