"""MTT against TESLA: memory of one outer iteration at syn_steps 10, 20, 40, 80 (issue 4).

Fashion-MNIST, IPC 1 by default (MTT's unrolled graph at IPC 10 and 80 steps would need
about 20 GB here), ConvNet-3 (width 128), every image in each student step, DSA. Two memory
figures per setting, all settings in one run:
  saved MB  peak bytes autograd holds for backward (core.profile.peak_saved_bytes; a tensor
            saved by two operations counts twice): deterministic, the unrolled graph itself;
  peak MB   the process's peak resident memory (the kernel's high-water mark, reset before
            the iteration) above its level before it, each setting in a fresh process.
Both objectives give the same image gradient (tests/test_trajectory.py). The experts are two
short ones (2 epochs on 2,000 training images): memory does not depend on their quality.

    python experiments/trajectory_memory.py [--steps 10 20 40 80] [--ipc 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import torch

os.environ["DATADISTILL_COMPILE"] = "0"  # eager: saved-tensor hooks see the real graph

from core import data as datasets  # noqa: E402
from core.experts import ExpertBank, ExpertConfig, train_experts  # noqa: E402
from core.objectives.trajectory import ConstantMemoryMatching, TrajectoryMatching  # noqa: E402
from core.params.images import FreeImages  # noqa: E402
from core.params.learnt_lr import WithLearntLR  # noqa: E402
from core.plots import save  # noqa: E402
from core.profile import peak_rss_bytes, peak_saved_bytes, reset_peak_rss, rss_bytes  # noqa: E402
from core.results import append_rows, command_line, load_rows  # noqa: E402

RESULTS = Path("experiments/results/trajectory_memory.json")
KINDS = {
    "mtt": TrajectoryMatching,
    "tesla": ConstantMemoryMatching,  # exact: keeps the student's parameters of every step
    "tesla-first-order": partial(ConstantMemoryMatching, first_order=True),  # TESLA's code
}


def make_experts(data, folder: Path) -> None:
    subset = datasets.Dataset(
        data.spec, data.x_train[:2000], data.y_train[:2000], data.x_test, data.y_test
    )
    train_experts(subset, config=ExpertConfig(num=2, epochs=2), folder=folder, progress=False)


def measure_one(kind: str, steps: int, ipc: int, folder: Path) -> dict:
    """One setting, in this (fresh) process: seconds, peak RSS and saved bytes."""
    data = datasets.load("fashion-mnist")
    gen = torch.Generator().manual_seed(0)
    images = FreeImages(data, ipc, generator=gen)
    param = WithLearntLR(images, syn_lr=0.01, lr_lr=1e-5)
    objective = KINDS[kind](
        experts=ExpertBank(folder),
        syn_steps=steps,
        expert_epochs=1,
        max_start_epoch=1,
        dsa_strategy=data.spec.dsa_strategy,
    )

    def iteration() -> None:
        param.zero_grad()
        objective.loss(param, data, torch.Generator().manual_seed(1), 0).backward()

    reset_peak_rss()
    base = rss_bytes()
    started = time.perf_counter()
    iteration()
    seconds = time.perf_counter() - started
    peak_rss = peak_rss_bytes()
    saved = peak_saved_bytes(iteration)
    return {
        "seconds": seconds,
        "peak_mb": max(peak_rss - base, 0) / 2**20,
        "saved_mb": saved / 2**20,
        "stored_bytes": param.stored_bytes(),
    }


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    kinds = dict.fromkeys(r.get("kind", r["method"]) for r in rows)
    for method, marker in zip(kinds, "os^v", strict=False):
        rs = [r for r in rows if r.get("kind", r["method"]) == method]
        rs.sort(key=lambda r: r["syn_steps"])
        steps = [r["syn_steps"] for r in rs]
        ax.plot(steps, [r["peak_mem_mb"] for r in rs], marker=marker, label=f"{method} peak RSS")
        ax.plot(steps, [r["saved_mb"] for r in rs], marker=marker, ls="--", label=f"{method} saved")
    ax.set_xlabel("syn_steps (unrolled student steps)")
    ax.set_ylabel("MB for one outer iteration")
    ax.set_title(f"Fashion-MNIST IPC {rows[0]['ipc']}, ConvNet-3: MTT vs TESLA memory")
    ax.legend()
    save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40, 80])
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--one", nargs=3, metavar=("KIND", "STEPS", "EXPERTS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        kind, steps, folder = args.one
        print(json.dumps(measure_one(kind, int(steps), args.ipc, Path(folder))))
        return

    command = command_line()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "experts"
        make_experts(datasets.load("fashion-mnist"), folder)
        rows = []
        for steps in args.steps:
            for kind in args.kinds:
                out = subprocess.run(
                    [sys.executable, __file__, "--ipc", str(args.ipc), "--one", kind, str(steps)]
                    + [str(folder)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                m = json.loads(out.strip().splitlines()[-1])
                rows.append({
                    "method": kind.split("-")[0], "kind": kind, "dataset": "fashion-mnist",
                    "ipc": args.ipc, "iterations": 1,
                    "arch": "convnet", "runs": 0, "acc_mean": None, "acc_std": None,
                    "images": 10 * args.ipc, "stored_bytes": m["stored_bytes"],
                    "sec_per_iter": m["seconds"], "peak_mem_mb": m["peak_mb"],
                    "command": command, "variant": f"{kind} syn_steps={steps}", "syn_steps": steps,
                    "saved_mb": m["saved_mb"], "threads": torch.get_num_threads(),
                })  # fmt: skip
                print(f"{kind} syn_steps {steps}: {m}", flush=True)
    append_rows(RESULTS, rows)
    print("\n".join(
        f"{r['method']:6s} {r['syn_steps']:3d} steps: saved {r['saved_mb']:8.1f} MB, "
        f"peak RSS {r['peak_mem_mb']:8.1f} MB, {r['sec_per_iter']:.2f} s"
        for r in rows
    ))  # fmt: skip
    plot([r for r in load_rows(RESULTS) if r["ipc"] == args.ipc], RESULTS.with_suffix(".png"))


if __name__ == "__main__":
    main()
