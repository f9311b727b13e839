"""Which per-example gradient backend is faster here: torch.func or Opacus's GradSampleModule?

The DP real side needs every real example's gradient (to clip it). Both backends give the
same numbers (tests/test_privacy.py); this times them on Fashion-MNIST batches of 256 for
the ConvNet at widths 32 and 128, against one plain backward pass of the same batch,
median of --reps passes after a warm-up, in this process's thread setting. The machine's
load average is recorded with each row: on a shared machine only ratios measured in the
same run compare.

    python experiments/privacy_speed.py [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from datadistill import data as datasets
from datadistill import nets
from datadistill.results import append_rows, command_line
from datadistill_apps.privacy import mechanism

RESULTS = Path("experiments/results/privacy_speed.json")


def seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plain_backward(net, x, y):
    return torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = datasets.load("fashion-mnist")
    x, y = data.x_train[: args.batch], data.y_train[: args.batch]
    rows = []
    for width in (32, 128):
        torch.manual_seed(0)
        net = nets.build("convnet", data.spec, width=width)
        timing = {"plain": seconds(lambda n=net: _plain_backward(n, x, y), args.reps)}
        for backend in mechanism.BACKENDS:
            timing[backend] = seconds(
                lambda n=net, b=backend: mechanism.clipped_sum(n, x, y, clip=0.1, backend=b),
                args.reps,
            )
        plain = timing["plain"]
        for variant, sec in timing.items():
            rows.append({
                "method": "dp-dsa",
                "dataset": data.spec.name,
                "ipc": 10,
                "iterations": 0,
                "arch": "convnet",
                "runs": 0,
                "acc_mean": None,
                "acc_std": None,
                "images": args.batch,
                "stored_bytes": None,
                "sec_per_iter": sec,
                "peak_mem_mb": None,
                "command": command_line(),
                "variant": f"real-side gradient, width {width}, {variant}",
                "width": width,
                "backend": variant,
                "vs_plain_backward": sec / plain,
                "threads": torch.get_num_threads(),
                "load_average": os.getloadavg()[0],
                "cpu": platform.machine(),
            })  # fmt: skip
        fastest = min(mechanism.BACKENDS, key=timing.get)
        print(
            f"width {width}: plain {plain:.3f} s, "
            + ", ".join(
                f"{b} {timing[b]:.3f} s ({timing[b] / plain:.1f}x)" for b in mechanism.BACKENDS
            )
            + f" -> {fastest} is faster",
            flush=True,
        )
    append_rows(RESULTS, rows)


if __name__ == "__main__":
    main()
