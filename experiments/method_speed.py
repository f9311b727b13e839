"""Seconds per outer iteration and peak memory of learnt methods, and how settings scale them.

Each measurement runs in a fresh process: the method's outer loop (`datadistill.distill.run`) for
--warmup + --steps iterations on Fashion-MNIST at --ipc; seconds per iteration are the
median of the timed steps, peak memory the process's peak resident memory (the kernel's
high-water mark, reset once the data is loaded) above its level at that point.
`--scale METHOD KEY V1 V2 ...` repeats one method over values of one setting (KIP's cost
against its real batch, RFAD's against its number of random models) and draws the curves.

    python experiments/method_speed.py --methods dc dsa dcc idc dd kip rfad frepo --ipc 10
    python experiments/method_speed.py --scale kip batch_real 500 1000 2000 5000 \
        --scale rfad n_models 1 2 4 8
    python experiments/method_speed.py --methods dc dsa dcc idc --baseline --reps 2

`--baseline` also measures each method as the plain per-class loop (DATADISTILL_COMPILE=0:
eager, float32 everywhere, the reference code's structure), alternating with the engine
`--reps` times, and reports the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from datadistill import data as datasets
from datadistill import methods
from datadistill.distill import run
from datadistill.loop import RunOptions
from datadistill.plots import save
from datadistill.profile import peak_rss_bytes, reset_peak_rss, rss_bytes
from datadistill.results import append_rows, command_line

RESULTS = Path("experiments/results/method_speed.json")


def measure_one(method: str, ipc: int, overrides: dict, warmup: int, steps: int) -> dict:
    data = datasets.load("fashion-mnist")
    reset_peak_rss()
    base = rss_bytes()
    secs: list[float] = []
    summary = run(
        method,
        data,
        ipc,
        options=RunOptions(iterations=warmup + steps, progress=False),
        overrides=overrides,
        callbacks=[lambda it, rec: secs.append(rec["sec"])],
    )
    peak = peak_rss_bytes()
    return {
        "sec_per_iter": statistics.median(secs[warmup:]),
        "peak_mem_mb": max(peak - base, 0) / 2**20,
        "stored_bytes": summary.stored_bytes,
        "images": len(summary.images),
        "arch": summary.config.get("arch", "-"),
    }


def measure(method, ipc, overrides, args, env: dict | None = None) -> dict:
    """`measure_one` in a fresh interpreter (same environment, plus `env`)."""
    cmd = [sys.executable, __file__, "--one", method, str(ipc), json.dumps(overrides)]
    cmd += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


PLAIN = {"DATADISTILL_COMPILE": "0"}  # eager float32: the straightforward per-class loop


def against_baseline(method: str, args) -> list[dict]:
    """The engine and the plain loop, alternated `args.reps` times; medians and their ratio."""
    runs: dict[str, list[dict]] = {"engine": [], "plain": []}
    for _ in range(args.reps):
        runs["plain"].append(measure(method, args.ipc, {}, args, env=PLAIN))
        runs["engine"].append(measure(method, args.ipc, {}, args))
    med = {
        k: {key: statistics.median(r[key] for r in rs) for key in ("sec_per_iter", "peak_mem_mb")}
        for k, rs in runs.items()
    }
    ratio = med["plain"]["sec_per_iter"] / med["engine"]["sec_per_iter"]
    rows = []
    for kind, variant in (("plain", "per-class loop, eager fp32"), ("engine", "the engine")):
        m = {**runs[kind][0], **med[kind]}
        speed = 1.0 if kind == "plain" else ratio
        all_secs = [r["sec_per_iter"] for r in runs[kind]]
        rows.append(row(method, args.ipc, m, variant, args, speedup_vs_per_class=speed,
                        all_seconds=all_secs, compiled=kind == "engine"))  # fmt: skip
    return rows


def row(method, ipc, m, variant, args, **extra) -> dict:
    return {
        "method": method, "dataset": "fashion-mnist", "ipc": ipc, "iterations": args.steps,
        "arch": m["arch"], "runs": 0, "acc_mean": None, "acc_std": None, "images": m["images"],
        "stored_bytes": m["stored_bytes"], "sec_per_iter": m["sec_per_iter"],
        "peak_mem_mb": m["peak_mem_mb"], "command": command_line(), "variant": variant,
        "threads": torch.get_num_threads(),
        "compiled": os.environ.get("DATADISTILL_COMPILE", "1") not in ("0", "false", "no", ""),
        **extra,
    }  # fmt: skip


def plot(rows: list[dict], path: Path) -> None:
    scaled = sorted({(r["method"], r["scale_key"]) for r in rows})
    fig, axes = plt.subplots(1, len(scaled), figsize=(5 * len(scaled), 3.8), squeeze=False)
    for ax, (method, key) in zip(axes[0], scaled, strict=True):
        rs = sorted(
            (r for r in rows if (r["method"], r["scale_key"]) == (method, key)),
            key=lambda r: r["scale_value"],
        )
        xs = [r["scale_value"] for r in rs]
        ax.plot(xs, [r["sec_per_iter"] for r in rs], "o-", color="C0")
        ax.set_xlabel(key)
        ax.set_ylabel("seconds per iteration", color="C0")
        twin = ax.twinx()
        twin.plot(xs, [r["peak_mem_mb"] for r in rs], "s--", color="C1")
        twin.set_ylabel("peak memory (MB)", color="C1")
        ax.set_title(f"{method}, Fashion-MNIST IPC {rs[0]['ipc']}")
    save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="*", default=[])
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--scale", nargs="+", action="append", default=[], metavar="ARG")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--baseline", action="store_true", help="also the plain per-class loop")
    p.add_argument("--reps", type=int, default=2, help="with --baseline: alternations")
    p.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        method, ipc, overrides = args.one
        m = measure_one(method, int(ipc), json.loads(overrides), args.warmup, args.steps)
        print(json.dumps(m))
        return

    rows = []
    for method in args.methods:
        methods.get(method)
        if args.baseline:
            pair = against_baseline(method, args)
            append_rows(RESULTS, pair)
            for r in pair:
                secs, mb, x = r["sec_per_iter"], r["peak_mem_mb"], r["speedup_vs_per_class"]
                print(f"{method} {r['variant']}: {secs:.2f} s/it, {mb:.0f} MB, {x:.2f}x")
            continue
        m = measure(method, args.ipc, {}, args)
        rows.append(row(method, args.ipc, m, "default settings", args))
        append_rows(RESULTS, rows[-1:])  # kept as measured: a long run can be stopped
        print(f"{method}: {m}", flush=True)
    scale_rows = []
    for spec in args.scale:
        if len(spec) < 3:
            raise SystemExit("--scale takes METHOD KEY VALUE [VALUE ...]")
        method, key, *values = spec
        for v in values:
            m = measure(method, args.ipc, {key: v}, args)
            extra = {"scale_key": key, "scale_value": float(v)}
            scale_rows.append(row(method, args.ipc, m, f"{key}={v}", args, **extra))
            append_rows(RESULTS, scale_rows[-1:])
            print(f"{method} {key}={v}: {m}", flush=True)
    if scale_rows:
        plot(scale_rows, RESULTS.with_name("method_scaling.png"))


if __name__ == "__main__":
    main()
