"""Kernel ridge regression accuracy of the kernel methods' Fashion-MNIST summaries (issue 5).

KIP and RFAD are judged twice: by the protocol (finite ConvNets trained on the summary,
rows in meta_fmnist.json) and by KRR from the summary to the test set with the kernel the
summary was distilled for (`datadistill.krr_eval`), the papers' own number. This script reads the
committed summaries under experiments/results/meta_fmnist/ and writes one row per summary
(arch `krr-<kernel>`, one deterministic run) to experiments/results/krr_fmnist.json, and
the same KRR from the random subset of the same IPC (engine_fmnist/) as the baseline.

    python experiments/krr_fmnist.py [--methods kip rfad] [--device auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from datadistill import data as datasets
from datadistill.distill import resolve_device
from datadistill.evaluate import device_name
from datadistill.krr_eval import KERNELS, kernel_for, krr_accuracy
from datadistill.results import append_rows, command_line, table
from datadistill.summary import Summary

RUNS = Path("experiments/results/meta_fmnist")
RANDOM = Path("experiments/results/engine_fmnist")
RESULTS = Path("experiments/results/krr_fmnist.json")
KERNEL_NAMES = {"kip": "krr-fc-ntk", "rfad": "krr-conv-rf"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=sorted(KERNELS))
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    data = datasets.load("fashion-mnist")
    rows = []

    def score(summary: Summary, kernel, method: str, path: Path, variant=None) -> None:
        started = time.perf_counter()
        acc = krr_accuracy(summary, data, kernel, device=device)
        run = summary.extra.get("run", {})
        rows.append({
            "method": summary.method, "dataset": "fashion-mnist", "ipc": summary.ipc,
            "iterations": run.get("iterations"), "arch": KERNEL_NAMES[method], "runs": 1,
            "acc_mean": acc, "acc_std": 0.0, "images": len(summary.images),
            "stored_bytes": summary.stored_bytes, "sec_per_iter": None, "peak_mem_mb": None,
            "command": command_line(), "eval_epochs": 0, "seed": summary.seed,
            "eval_seconds": time.perf_counter() - started, "device": device_name(device),
            "summary": str(path), "variant": variant,
        })  # fmt: skip
        print(f"{path} ({KERNEL_NAMES[method]}): KRR accuracy {acc:.4f}", flush=True)

    for method in args.methods:
        for path in sorted(RUNS.glob(f"{method}-fashion-mnist-ipc*-s*/summary.safetensors")):
            summary = Summary.load(path)
            kernel = kernel_for(summary)  # the same kernel judges the random subset
            score(summary, kernel, method, path)
            base = RANDOM / f"random-fashion-mnist-ipc{summary.ipc}-s0" / "summary.safetensors"
            if base.exists():
                score(Summary.load(base), kernel, method, base, variant=f"kernel of {method}")
    append_rows(RESULTS, rows)
    print(table(rows))


if __name__ == "__main__":
    main()
