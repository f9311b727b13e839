"""How `distill continual`'s stream defaults (epochs, batch size and lr per experience) were chosen.

On a validation split of split-digits' *training* data (80% to train, the other 20% as the
stream's test set; the real test set is never read), Naive and Replay at memory 10 for a
few (epochs, batch size, lr) settings on class order 0. The defaults are the cheapest
setting whose Naive learns its last experience (final accuracy near 20%, the class-incremental
ceiling of a model that forgets everything else) and whose Replay is clearly above Naive.
The old defaults (5 epochs of batches of 128) gave about 15 SGD steps per experience: from
the third experience on, the network learnt only one of its two new classes, so Naive ended
at exactly 10% (half the last experience) and Replay near it. Rows in
experiments/results/stream_defaults_digits.json.

    python experiments/continual_defaults.py [--settings 5:128:0.01 20:32:0.01 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from datadistill import data as datasets
from datadistill.data import Dataset
from datadistill.results import append_rows, table
from datadistill_apps.continual.bench import split_benchmark
from datadistill_apps.continual.loop import run_stream
from datadistill_apps.continual.strategies import StrategyConfig

RESULTS = Path("experiments/results/stream_defaults_digits.json")


def validation_split(data: Dataset, *, fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The training set cut in two: train on 1 - fraction, test on the rest."""
    n = len(data.y_train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = int(n * fraction)
    val, train = perm[:cut], perm[cut:]
    spec = dataclasses.replace(data.spec, name=f"{data.spec.name}-val")
    return Dataset(spec, data.x_train[train], data.y_train[train], data.x_train[val],
                   data.y_train[val])  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--settings", nargs="+", default=["5:128:0.01", "10:32:0.01", "20:32:0.01", "10:32:0.05"],
        help="EPOCHS:BATCH:LR per experience",
    )  # fmt: skip
    p.add_argument("--memory", type=int, default=10)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args()
    data = validation_split(datasets.load("digits"))
    bench = split_benchmark("split-digits", seed=0, data=data)
    rows = []
    for setting in args.settings:
        e, b, lr = setting.split(":")
        epochs, batch, lr = int(e), int(b), float(lr)
        config = StrategyConfig(epochs=epochs, lr=lr, batch_size=batch)
        for strategy in ("naive", "replay"):
            started = time.monotonic()
            r = run_stream(bench, strategy=strategy, memory=args.memory, seed=0, config=config)
            row = {
                "method": strategy, "dataset": data.spec.name, "ipc": args.memory,
                "iterations": 0, "arch": config.arch, "runs": 1,
                "acc_mean": r.final_acc, "acc_std": 0.0, "images": 0, "stored_bytes": 0,
                "sec_per_iter": None, "peak_mem_mb": None,
                "command": "python experiments/continual_defaults.py",
                "variant": f"epochs={epochs},batch={batch},lr={lr:g}", "seed": 0,
                "epochs": epochs, "batch_size": batch, "lr": lr, "forgetting": r.forgetting,
                "curve": r.curve, "seconds": round(time.monotonic() - started, 1),
            }  # fmt: skip
            rows.append(row)
            append_rows(args.results, [row])
            print(f"{setting} {strategy}: {100 * r.final_acc:.2f}% "
                  f"({row['seconds']} s)", flush=True)  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
