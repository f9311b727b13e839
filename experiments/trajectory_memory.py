"""MTT against TESLA: memory and time of one outer iteration at syn_steps 10, 20, 40, 80 (issue 4).

Fashion-MNIST, IPC 1 by default (MTT's unrolled graph at IPC 10 and 80 steps would need
about 20 GB here), ConvNet-3 (width 128), every image in each student step, DSA. Kinds: MTT;
TESLA as this library runs it (exact gradient, `snapshots` = 10 parameter vectors kept,
the rest recomputed); TESLA keeping every step's parameters (`snapshots=0`, as TESLA's code);
TESLA's first-order variant (its released code's gradient). Every setting, in one run, is
measured in two fresh processes:
  peak MB     the process's peak resident memory (the kernel's high-water mark, reset before
              the iteration) above its level before it, with glibc's mmap threshold fixed at
              128 KiB (MALLOC_MMAP_THRESHOLD_): every tensor block is then mapped on
              allocation and unmapped when freed, so the figure is the memory the iteration
              holds. Otherwise glibc serves blocks from a heap whose holes later blocks may
              not fit, and the peak drifts with the order of allocations at a fixed set of
              live tensors (the engine column below shows it);
  saved MB    peak bytes autograd holds for backward (datadistill.profile.peak_saved_bytes; a tensor
              saved by two operations counts twice), in the same iteration: the graph itself;
  s/iter, engine peak MB   in a second process with the engine's allocator
              (datadistill.accel.tune_allocator, as `distill run`): time, and the peak resident
              memory it gives, fragmentation included.
Both objectives give the same image gradient (tests/test_trajectory.py). The experts are two
short ones (2 epochs on 2,000 training images): memory does not depend on their quality.

    python experiments/trajectory_memory.py [--steps 10 20 40 80] [--ipc 1] [--kinds ...]
"""

from __future__ import annotations

import argparse
import inspect
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

from datadistill import accel  # noqa: E402
from datadistill import data as datasets  # noqa: E402
from datadistill.experts import ExpertBank, ExpertConfig, train_experts  # noqa: E402
from datadistill.objectives import revolve  # noqa: E402
from datadistill.objectives.trajectory import ConstantMemoryMatching, TrajectoryMatching  # noqa: E402
from datadistill.params.images import FreeImages  # noqa: E402
from datadistill.params.learnt_lr import WithLearntLR  # noqa: E402
from datadistill.plots import save  # noqa: E402
from datadistill.profile import peak_rss_bytes, peak_saved_bytes, reset_peak_rss, rss_bytes  # noqa: E402
from datadistill.results import append_rows, command_line, load_rows  # noqa: E402

RESULTS = Path("experiments/results/trajectory_memory.json")
KINDS = {
    "mtt": TrajectoryMatching,
    "tesla": ConstantMemoryMatching,  # exact, at most `snapshots` (default) vectors kept
    "tesla-store-all": partial(ConstantMemoryMatching, snapshots=0),  # every theta_i kept
    "tesla-first-order": partial(ConstantMemoryMatching, first_order=True),  # TESLA's code
}
EXACT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "DATADISTILL_MALLOC": "0"}


def make_experts(data, folder: Path) -> None:
    subset = datasets.Dataset(
        data.spec, data.x_train[:2000], data.y_train[:2000], data.x_test, data.y_test
    )
    train_experts(subset, config=ExpertConfig(num=2, epochs=2), folder=folder, progress=False)


def measure_one(kind: str, steps: int, ipc: int, folder: Path, allocator: str) -> dict:
    """One setting, in this (fresh) process; `allocator`: "exact" (peak RSS and saved bytes
    under EXACT_MALLOC, set by the caller) or "engine" (seconds and peak RSS)."""
    data = datasets.load("fashion-mnist")
    if allocator == "engine":  # after the data, as `distill run`: its freed memory is gone
        accel.tune_allocator()
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
    saved = peak_saved_bytes(iteration) if allocator == "exact" else None
    if allocator == "engine":
        iteration()
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": max(peak_rss_bytes() - base, 0) / 2**20,
        "saved_mb": None if saved is None else saved / 2**20,
        "stored_bytes": param.stored_bytes(),
    }


def snapshots_of(kind: str) -> int | None:
    """The parameter vectors an exact TESLA kind keeps (0: all); None for the others."""
    if kind in ("mtt", "tesla-first-order"):
        return None
    default = inspect.signature(ConstantMemoryMatching).parameters["snapshots"].default
    return getattr(KINDS[kind], "keywords", {}).get("snapshots", default)


def recomputed_steps(kind: str, steps: int) -> int:
    """Student steps TESLA runs forwards beyond keeping every theta_i (0: none)."""
    snapshots = snapshots_of(kind)
    if not snapshots:
        return 0
    return revolve.forward_steps(steps, snapshots) - (steps - 1)


def run_one(kind: str, steps: int, ipc: int, folder: Path, allocator: str) -> dict:
    env = {**os.environ, **(EXACT_MALLOC if allocator == "exact" else {})}
    args = ["--ipc", str(ipc), "--one", kind, str(steps), str(folder), allocator]
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path) -> None:
    fig, (mem, sec) = plt.subplots(1, 2, figsize=(11, 4.2))
    kinds = dict.fromkeys(r["kind"] for r in rows)
    for i, kind in enumerate(kinds):
        rs = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["syn_steps"])
        steps = [r["syn_steps"] for r in rs]
        style = {"marker": "os^vD"[i % 5], "color": f"C{i}"}
        mem.plot(steps, [r["peak_mem_mb"] for r in rs], **style, label=f"{kind}: peak RSS")
        mem.plot(steps, [r["peak_mem_engine_mb"] for r in rs], **style, ls=":", mfc="none")
        mem.plot(steps, [r["saved_mb"] for r in rs], **style, ls="--", mfc="none")
        sec.plot(steps, [r["sec_per_iter"] for r in rs], **style, label=kind)
    mem.set_yscale("log")
    mem.set_ylabel("MB for one outer iteration (log scale)")
    mem.set_title("solid: peak RSS; dotted: engine allocator; dashed: saved graph", fontsize=9)
    mem.legend(fontsize=8)
    sec.set_ylabel("seconds per outer iteration (engine allocator)")
    sec.legend(fontsize=8)
    for ax in (mem, sec):
        ax.set_xlabel("syn_steps (unrolled student steps)")
        ax.set_xticks(sorted({r["syn_steps"] for r in rows}))
    fig.suptitle(f"Fashion-MNIST IPC {rows[0]['ipc']}, ConvNet-3: MTT vs TESLA, one iteration")
    save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40, 80])
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument(
        "--one", nargs=4, metavar=("KIND", "STEPS", "EXPERTS", "ALLOC"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.one:
        kind, steps, folder, allocator = args.one
        print(json.dumps(measure_one(kind, int(steps), args.ipc, Path(folder), allocator)))
        return

    command = command_line()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "experts"
        make_experts(datasets.load("fashion-mnist"), folder)
        rows = []
        for steps in args.steps:
            for kind in args.kinds:
                exact = run_one(kind, steps, args.ipc, folder, "exact")
                engine = run_one(kind, steps, args.ipc, folder, "engine")
                rows.append({
                    "method": kind.split("-")[0], "kind": kind, "dataset": "fashion-mnist",
                    "ipc": args.ipc, "iterations": 1,
                    "arch": "convnet", "runs": 0, "acc_mean": None, "acc_std": None,
                    "images": 10 * args.ipc, "stored_bytes": exact["stored_bytes"],
                    "sec_per_iter": engine["seconds"], "peak_mem_mb": exact["peak_mb"],
                    "command": command, "variant": f"{kind} syn_steps={steps}", "syn_steps": steps,
                    "saved_mb": exact["saved_mb"], "peak_mem_engine_mb": engine["peak_mb"],
                    "snapshots": snapshots_of(kind),
                    "recomputed_steps": recomputed_steps(kind, steps),
                    "malloc": "peak_mem_mb: MALLOC_MMAP_THRESHOLD_=131072; peak_mem_engine_mb "
                              "and sec_per_iter: datadistill.accel.tune_allocator",
                    "threads": torch.get_num_threads(),
                })  # fmt: skip
                print(f"{kind} syn_steps {steps}: exact {exact}, engine {engine}", flush=True)
    append_rows(RESULTS, rows)
    print("\n".join(
        f"{r['kind']:17s} {r['syn_steps']:3d} steps: saved {r['saved_mb']:7.1f} MB, peak RSS "
        f"{r['peak_mem_mb']:7.1f} MB (engine {r['peak_mem_engine_mb']:7.1f}), "
        f"{r['sec_per_iter']:6.2f} s, {r['recomputed_steps']} steps recomputed"
        for r in rows
    ))  # fmt: skip
    for kind in args.kinds:
        peaks = [r["peak_mem_mb"] for r in rows if r["kind"] == kind]
        print(f"{kind}: peak RSS max/min over syn_steps {max(peaks) / min(peaks):.3f}")
    plot([r for r in load_rows(RESULTS) if r["ipc"] == args.ipc], RESULTS.with_suffix(".png"))


if __name__ == "__main__":
    main()
