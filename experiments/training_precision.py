"""Seconds per SGD step of the one training loop in float32 against mixed bfloat16.

`datadistill.train.train` with `TrainConfig.precision` "fp32" and "bf16" (autocast, channels-last,
float32 weights; what expert training uses by default where bfloat16 is fast), on the same
Fashion-MNIST images with DSA, one network per precision, each first run once untimed
(compilation), then the two alternated --reps times. Writes one row (medians and their
ratio) to experiments/results/train_speed.json.

    OMP_NUM_THREADS=1 python experiments/training_precision.py [--batches 20 --reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from datadistill import accel, nets
from datadistill import data as datasets
from datadistill.results import append_rows, command_line
from datadistill.train import TrainConfig, train

RESULTS = Path("experiments/results/train_speed.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=20, help="SGD steps of 256 images per epoch")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    data = datasets.load("fashion-mnist")
    n = 256 * args.batches
    x, y = data.x_train[:n], data.y_train[:n]
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    networks = {}
    for precision in seconds:
        torch.manual_seed(0)
        networks[precision] = nets.build("convnet", data.spec)
    for rep in range(args.reps + 1):
        for precision, net in networks.items():
            config = TrainConfig(epochs=1, precision=precision)
            start = time.perf_counter()
            train(net, x, y, config=config, dsa_strategy=data.spec.dsa_strategy,
                  generator=torch.Generator().manual_seed(rep))  # fmt: skip
            if rep:  # the first pass compiles
                seconds[precision].append((time.perf_counter() - start) / args.batches)
    fp32, bf16 = (statistics.median(seconds[k]) for k in ("fp32", "bf16"))
    row = {
        "method": "train", "dataset": "fashion-mnist", "ipc": 0, "iterations": args.batches,
        "arch": "convnet", "runs": args.reps, "acc_mean": None, "acc_std": None, "images": n,
        "stored_bytes": None, "sec_per_iter": bf16, "peak_mem_mb": None,
        "command": command_line(), "variant": "step seconds, bf16 mixed against fp32",
        "fp32_sec_per_step": fp32, "bf16_sec_per_step": bf16, "speedup": fp32 / bf16,
        "threads": torch.get_num_threads(), "compiled": accel.enabled(),
        "bf16_units": accel.fast_bf16(torch.device("cpu")), "seconds": seconds,
    }  # fmt: skip
    append_rows(RESULTS, [row])
    print(
        f"per SGD step of 256 images (DSA, ConvNet, {row['threads']} thread(s), median of "
        f"{args.reps}): fp32 {fp32:.3f} s, bf16 mixed {bf16:.3f} s, {fp32 / bf16:.2f}x"
    )


if __name__ == "__main__":
    main()
