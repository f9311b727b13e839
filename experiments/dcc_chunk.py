"""How many real images should DCC's contrastive step put through the network at once?

DCC's real side is one gradient of the mean over classes of each class's mean loss; the
engine accumulates it over chunks of classes (`ClassContrastiveMatching.real_chunk`), which
is exact under instance norm. One chunk of every class (2,560 images at batch_real 256)
suits a GPU; on a CPU its activations run to gigabytes. This script times one contrastive
matching step (warm-up off) at each chunk size, interleaved in one run on Fashion-MNIST
shapes (ConvNet-3, 256 real images per class, DSA batch draws), checks that every chunk size
gives the same loss and image gradient, and appends rows to
experiments/results/gradient_speed.json.

    python experiments/dcc_chunk.py [--ipc 1] [--chunks 2560 1280 256] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

os.environ.setdefault("DATADISTILL_COMPILE", "0")

from datadistill import data as datasets  # noqa: E402
from datadistill.accel import trim_memory, tune_allocator  # noqa: E402
from datadistill.objectives.distribution import fresh_network  # noqa: E402
from datadistill.objectives.gradient import ClassContrastiveMatching  # noqa: E402
from datadistill.profile import measure  # noqa: E402
from datadistill.results import append_rows, command_line  # noqa: E402

RESULTS = Path("experiments/results/gradient_speed.json")


def step(objective, net, x_syn, y_syn, ipc, data, seed):
    """One contrastive matching step from a fixed seed: (seconds, peak MB, loss, image grad)."""
    x = x_syn.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    trim_memory()  # the last chunk size's freed memory must not count as this one's peak
    with measure(x.device) as m:
        loss = objective._match(net, x, y_syn, ipc, data, gen)
        loss.backward()
    return m.seconds, m.peak_mem_mb, float(loss.detach()), x.grad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ipc", type=int, default=1)
    p.add_argument("--chunks", type=int, nargs="+", default=[2560, 1280, 256])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()

    tune_allocator()  # as in a distillation run (datadistill.distill)
    data = datasets.load("fashion-mnist")
    k = data.spec.num_classes
    objective = ClassContrastiveMatching(
        dsa_strategy=data.spec.dsa_strategy, outer_warmup=0, inner_warmup=0
    )
    net = fresh_network("convnet", data, torch.Generator().manual_seed(0), "cpu")
    gen = torch.Generator().manual_seed(1)
    x_syn = data.sample_per_class(args.ipc, gen)
    y_syn = torch.arange(k).repeat_interleave(args.ipc)

    seconds = {c: [] for c in args.chunks}
    peaks = {c: 0.0 for c in args.chunks}
    results = {}
    for rep in range(args.reps + 1):  # rep 0 warms up and is not timed
        for chunk in args.chunks:
            objective.real_chunk = chunk
            sec, peak, loss, g = step(objective, net, x_syn, y_syn, args.ipc, data, seed=rep)
            if rep:
                seconds[chunk].append(sec)
                peaks[chunk] = max(peaks[chunk], peak)
            results[chunk] = (loss, g)
    ref_loss, ref_g = results[args.chunks[0]]
    base = statistics.median(seconds[args.chunks[0]])
    rows = []
    print(f"DCC contrastive step, Fashion-MNIST IPC {args.ipc}, {torch.get_num_threads()} threads")
    for chunk in args.chunks:
        loss, g = results[chunk]
        rel = float((g - ref_g).norm() / ref_g.norm())
        med = statistics.median(seconds[chunk])
        print(
            f"  chunk {chunk:5d}: {med:6.2f} s  peak {peaks[chunk]:7.0f} MB  "
            f"{base / med:4.2f}x  loss diff {abs(loss - ref_loss):.1e}  grad rel diff {rel:.1e}"
        )
        rows.append(
            {
                "method": "dcc",
                "dataset": "fashion-mnist",
                "ipc": args.ipc,
                "iterations": 0,
                "arch": "convnet",
                "runs": 0,
                "acc_mean": None,
                "acc_std": None,
                "images": k * args.ipc,
                "stored_bytes": None,
                "sec_per_iter": med,
                "peak_mem_mb": peaks[chunk],
                "variant": f"contrastive step, real chunk {chunk}",
                "speedup_vs_chunk": {args.chunks[0]: base / med},
                "threads": torch.get_num_threads(),
                "batch_real": objective.batch_real,
                "all_seconds": seconds[chunk],
                "grad_rel_diff": rel,
                "command": command_line(),
            }
        )
    append_rows(RESULTS, rows)
    print(f"appended {len(rows)} rows to {RESULTS}")


if __name__ == "__main__":
    main()
