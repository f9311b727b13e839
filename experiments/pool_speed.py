"""DM's step with a filled embedder pool against fresh networks, one run, same threads.

Fashion-MNIST, batch_real 256, the engine's settings (compiled, tuned allocator, real side in
the precision "auto" picks). For IPC 1, 10 and 50:
  fresh    a new random ConvNet, real batch and DSA draw every step (DM as published);
  pooled   steps over the members of a filled pool (datadistill.objectives.embedder_pool):
           the synthetic side only;
  fill     the one-off cost of creating one member (network, real batch, real means), and
           with --class-fill that of one member of the "class" statistic (every image).
Medians over --steps steps after one warm-up step (compilation excluded); peak memory above
the level before the variant. Ratios are pooled against fresh in the same run.

    python experiments/pool_speed.py [--steps 5] [--ipcs 1 10 50] [--class-fill]
"""

from __future__ import annotations

import argparse
import gc
import statistics
from pathlib import Path

import torch

from datadistill import accel
from datadistill import data as datasets
from datadistill.objectives.distribution import MeanEmbedding
from datadistill.params.images import FreeImages
from datadistill.profile import measure
from datadistill.results import append_rows, command_line, table

RESULTS = Path("experiments/results/pool_speed.json")


def timed_steps(objective, param, data, gen, steps: int, first: int = 0):
    """Median seconds and peak MB over `steps` steps after a warm-up step."""
    times, peaks = [], []
    gc.collect()
    accel.trim_memory()
    for i in range(first, first + steps + 1):
        with measure("cpu") as m:
            objective.loss(param, data, gen, i).backward()
        param.images.grad = None
        if i > first:
            times.append(m.seconds)
            peaks.append(m.peak_mem_mb)
    return statistics.median(times), max(peaks)


def row(ipc: int, variant: str, seconds: float, peak: float, data, pixels: int, **extra) -> dict:
    n = ipc * data.spec.num_classes
    return {
        "method": "dm", "dataset": data.spec.name, "ipc": ipc, "iterations": 0,
        "arch": "convnet", "runs": 0, "acc_mean": None, "acc_std": None, "images": n,
        "stored_bytes": pixels * 4 + n * 8,
        "sec_per_iter": seconds, "peak_mem_mb": peak, "command": command_line(),
        "variant": variant, "batch_real": 256, "threads": torch.get_num_threads(), **extra,
    }  # fmt: skip


def measure_ipc(data, ipc: int, steps: int, class_fill: bool) -> list[dict]:
    strategy = data.spec.dsa_strategy
    param = FreeImages(data, ipc, generator=torch.Generator().manual_seed(0))
    fresh_s, fresh_mb = timed_steps(
        MeanEmbedding(dsa_strategy=strategy), param, data, torch.Generator().manual_seed(1), steps
    )
    pooled = MeanEmbedding(dsa_strategy=strategy, pool=steps + 1)
    gen = torch.Generator().manual_seed(1)
    fills = []
    for i in range(steps + 1):  # the fill: every member created once (first one compiles)
        with measure("cpu") as m:
            pooled.loss(param, data, gen, i).backward()
        param.images.grad = None
        fills.append(m.seconds)
    fill = statistics.median(fills[1:])
    pooled_s, pooled_mb = timed_steps(pooled, param, data, gen, steps, first=steps + 1)
    pixels = param.images.numel()
    member_kb = pooled.pool.nbytes() / len(pooled.pool.members) / 1024
    rows = [
        row(ipc, "fresh networks", fresh_s, fresh_mb, data, pixels),
        row(ipc, "pooled (filled)", pooled_s, pooled_mb, data, pixels,
            speedup_vs_fresh=fresh_s / pooled_s, fill_seconds_per_member=fill,
            cache_kb_per_member=member_kb),
    ]  # fmt: skip
    if class_fill:
        whole = MeanEmbedding(dsa_strategy=strategy, pool=2, pool_statistic="class")
        gen = torch.Generator().manual_seed(1)
        seconds = []
        for i in range(2):
            with measure("cpu") as m:
                whole.loss(param, data, gen, i).backward()
            param.images.grad = None
            seconds.append(m.seconds)
        rows[-1]["class_fill_seconds_per_member"] = seconds[-1]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--ipcs", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--class-fill", action="store_true", help="also time a whole-class member")
    args = p.parse_args()
    accel.tune_allocator()
    data = datasets.load("fashion-mnist")
    rows = []
    for ipc in args.ipcs:
        rows += measure_ipc(data, ipc, args.steps, args.class_fill)
    append_rows(RESULTS, rows)
    print(table(rows, [
        ("ipc", lambda r: str(r["ipc"])),
        ("variant", lambda r: r["variant"]),
        ("s/step", lambda r: f"{r['sec_per_iter']:.3f}"),
        ("peak MB", lambda r: f"{r['peak_mem_mb']:.0f}"),
        ("speed-up", lambda r: f"{r['speedup_vs_fresh']:.2f}x" if "speedup_vs_fresh" in r else ""),
        ("fill s/member", lambda r: f"{r.get('fill_seconds_per_member', 0):.2f}"),
        ("KB/member", lambda r: f"{r.get('cache_kb_per_member', 0):.1f}"),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
