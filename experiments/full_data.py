"""The full-data ConvNet under a protocol: the reference of DD-Ranking's hard-label recovery.

HLR (`datadistill.bench.fairness`) is the full training set's accuracy minus a summary's,
both trained the same way. This trains `--runs` ConvNets on every training image with the
protocol's loop (`datadistill.train`, DSA, lr schedule) and appends one row of method
`full-data` to experiments/results/full_data.json. The quick protocol's 300 epochs over
60,000 images are some hours a run on a 2-core CPU: `--epochs` lowers them (the row records
the epochs, so it only pairs with summaries evaluated the same way) and `--device cuda`
takes a GPU. Each run keeps its training state after every epoch under `--resume-dir`, so a
run stopped anywhere (a GPU slot ending, a killed job) goes on bit for bit when the same
command is run again. Rows are appended as each protocol finishes; a rerun skips finished ones.

    python experiments/full_data.py --epochs 300 --runs 5 --device auto
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from datadistill import data as datasets
from datadistill import nets
from datadistill.atomic import write_bytes
from datadistill.bench.fairness import FULL_DATA
from datadistill.distill import resolve_device
from datadistill.evaluate import device_name
from datadistill.results import append_rows, command_line, load_rows
from datadistill.train import QUICK, test, train

RESULTS = Path("experiments/results/full_data.json")


class Clock:
    """A run's training seconds and devices, kept beside its training state (`path`) after
    every epoch, so a run resumed across sessions (or moved to a GPU) reports all of it."""

    def __init__(self, path: Path, device: str):
        kept = json.loads(path.read_text()) if path.exists() else {}
        self.path, self.device = path, device
        self.seconds, self.devices = kept.get("seconds", 0.0), kept.get("devices", [])
        self.last = time.monotonic()

    def after(self, bar: tqdm):
        """The `on_epoch` callback: add the epoch's seconds, keep them, move the bar."""

        def on_epoch(epoch: int, loss: float) -> None:
            now = time.monotonic()
            self.seconds, self.last = self.seconds + now - self.last, now
            self.devices = sorted({*self.devices, self.device})
            record = {"seconds": round(self.seconds, 1), "devices": self.devices}
            write_bytes(self.path, json.dumps(record).encode())
            bar.n = epoch + 1
            bar.set_postfix(loss=f"{loss:.3f}")

        return on_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=QUICK.epochs)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--arch", default="convnet")
    p.add_argument("--device", default="auto")
    p.add_argument("--resume-dir", type=Path, default=Path("runs/full_data"))
    args = p.parse_args()
    data = datasets.load(args.dataset)
    done = [
        r for r in load_rows(RESULTS)
        if (r["dataset"], r["arch"], r.get("eval_epochs"), r["runs"])
        == (args.dataset, args.arch, args.epochs, args.runs)
    ]  # fmt: skip
    if done:
        print(f"done already: {done[0]['acc_mean']:.4f} (experiments/results/full_data.json)")
        return
    device = resolve_device(args.device)
    config = QUICK.with_(epochs=args.epochs)
    x, y = data.x_train.to(device), data.y_train.to(device)
    accs, spent, devices = [], 0.0, set()
    for run in range(args.runs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run)
            net = nets.build(args.arch, data.spec).to(device)
        gen = torch.Generator().manual_seed(run)
        stem = args.resume_dir / f"{args.dataset}-{args.arch}-e{args.epochs}-run{run}"
        clock = Clock(stem.with_suffix(".json"), device_name(device))
        with tqdm(total=args.epochs, desc=f"run {run}", unit="epoch") as bar:
            train(net, x, y, config=config, dsa_strategy=data.spec.dsa_strategy, generator=gen,
                  on_epoch=clock.after(bar),
                  resume_file=stem.with_suffix(".safetensors"))  # fmt: skip
        accs.append(test(net, data.x_test.to(device), data.y_test.to(device)))
        spent, devices = spent + clock.seconds, devices | set(clock.devices)
        print(f"run {run}: {100 * accs[-1]:.2f}% after {clock.seconds:.0f} s", flush=True)
    per_class = len(data.y_train) // data.spec.num_classes
    append_rows(RESULTS, [{
        "method": FULL_DATA, "dataset": args.dataset, "ipc": per_class, "iterations": 0,
        "arch": args.arch, "runs": len(accs), "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.pstdev(accs), "images": len(data.y_train),
        "stored_bytes": data.x_train.numel() * 4, "sec_per_iter": None, "peak_mem_mb": None,
        "command": command_line(), "accs": accs, "eval_epochs": args.epochs,
        "eval_dsa": config.dsa, "eval_seconds": round(spent, 1),
        "device": " + ".join(sorted(devices)), "labels": "hard",
    }])  # fmt: skip
    print(f"{FULL_DATA}: {100 * statistics.fmean(accs):.2f} ± {100 * statistics.pstdev(accs):.2f}%")


if __name__ == "__main__":
    main()
