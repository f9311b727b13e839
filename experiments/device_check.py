"""Every method, a few iterations on the chosen device: catches device bugs and sizes runs.

Each method distils a few iterations (its seconds per iteration are the median after the
first two, which include warm-up), then one fresh ConvNet trains on the summary for a few
epochs (seconds per evaluation epoch). MTT and TESLA first get one short expert. A method
that fails prints its traceback and the rest go on; the exit status says whether any failed.

    python experiments/device_check.py --dataset fashion-mnist --ipc 10 --device auto
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import torch

from datadistill import atomic, methods
from datadistill import data as datasets
from datadistill.distill import resolve_device, run
from datadistill.evaluate import EvalConfig, evaluate
from datadistill.experts import ExpertConfig, train_experts
from datadistill.loop import RunOptions
from datadistill.train import TrainConfig

EXPERT_EPOCHS = 3


def check(name, data, ipc, device, iterations, eval_epochs, experts) -> dict:
    secs = []
    overrides = {}
    if name in ("mtt", "tesla"):
        overrides = {"experts": str(experts), "max_start_epoch": 1, "expert_epochs": 2}
    options = RunOptions(iterations=iterations, progress=False)
    started = time.perf_counter()
    summary = run(
        name,
        data,
        ipc,
        options=options,
        overrides=overrides,
        device=device,
        callbacks=[lambda it, rec: secs.append(rec["sec"])],
    )
    distil_s = time.perf_counter() - started
    started = time.perf_counter()
    config = EvalConfig(runs=1, train=TrainConfig(epochs=eval_epochs))
    row = evaluate(summary, data, config=config, device=device, progress=False)[0]
    return {
        "method": name,
        "ok": True,
        "sec_per_iter": statistics.median(secs[2:]) if len(secs) > 2 else None,
        "distil_s": round(distil_s, 2),
        "sec_per_eval_epoch": (time.perf_counter() - started) / eval_epochs,
        "acc": row["acc_mean"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--eval-epochs", type=int, default=10)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, help="JSON file for the table")
    args = p.parse_args()

    device = resolve_device(args.device)
    data = datasets.load(args.dataset)
    print(f"torch {torch.__version__} on {device}", flush=True)
    names = args.methods or methods.available()
    experts = Path(tempfile.mkdtemp()) / "experts"
    rows = []
    if {"mtt", "tesla"} & set(names):
        started = time.perf_counter()
        try:
            train_experts(
                data,
                config=ExpertConfig(num=1, epochs=EXPERT_EPOCHS),
                folder=experts,
                device=device,
                progress=False,
            )
            rows.append(
                {
                    "method": "experts",
                    "ok": True,
                    "sec_per_epoch": (time.perf_counter() - started) / EXPERT_EPOCHS,
                }
            )
        except Exception:
            traceback.print_exc()
            rows.append({"method": "experts", "ok": False})
    for name in names:
        try:
            rows.append(
                check(name, data, args.ipc, device, args.iterations, args.eval_epochs, experts)
            )
        except Exception as e:
            traceback.print_exc()
            rows.append({"method": name, "ok": False, "error": f"{type(e).__name__}: {e}"})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        atomic.write_bytes(args.out, json.dumps(rows, indent=1).encode())
    failed = [r["method"] for r in rows if not r["ok"]]
    print("failed:", ", ".join(failed) or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
