"""How should a network be trained on learnt regression labels? (KIP, RFAD, FRePO; issue 5)

KIP, RFAD and FRePO fit their labels by least squares, so the protocol trains on them with
a squared error. The protocol's SGD (lr 0.01, 300 epochs) is tuned for cross-entropy, whose
gradient per logit is softmax(f) - y; the per-element mean squared error (`F.mse_loss`)
has gradient 2 (f - y) / K, five times smaller at K = 10, and leaves networks undertrained.
This script distils each method on digits (the quick benchmark's settings) and trains fresh
networks on the same summary three ways: `mse_mean` (the per-element mean, the protocol's
loss until this experiment), `mse` (1/2 the squared error summed over classes, the
protocol's loss now) and `hard-ce` (cross-entropy on the argmax of the learnt labels).

    python experiments/label_loss.py            # digits, IPC 1 and 10, 5 runs, ~10 min
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from datadistill import data as datasets
from datadistill.distill import resolve_device, run
from datadistill.evaluate import EvalConfig, evaluate
from datadistill.loop import RunOptions
from datadistill.results import append_rows, table
from datadistill.train import TrainConfig

RESULTS = Path("experiments/results/label_loss_digits.json")
# the quick benchmark's budgets and RFAD's reduced kernel (experiments/sweeps/quick.yaml)
PRESETS = {
    "kip": (200, {}),
    "rfad": (50, {"n_models": "2", "width": "64"}),
    "frepo": (100, {}),
}
LOSSES = ("mse_mean", "mse", "hard-ce")


def variants(summary):
    """The same summary under each training loss (hard-ce: argmax labels, no label_loss)."""
    for loss in LOSSES:
        if loss == "hard-ce":
            extra = {k: v for k, v in summary.extra.items() if k != "label_loss"}
            yield loss, dataclasses.replace(summary, labels=summary.labels.argmax(1), extra=extra)
        else:
            yield loss, dataclasses.replace(summary, extra={**summary.extra, "label_loss": loss})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--methods", nargs="+", default=list(PRESETS))
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    data = datasets.load(args.dataset)
    device = resolve_device(args.device)
    config = EvalConfig(runs=args.runs, train=TrainConfig(epochs=args.epochs))
    rows = []
    for name in args.methods:
        iterations, overrides = PRESETS[name]
        for ipc in args.ipc:
            summary = run(name, data, ipc, options=RunOptions(iterations=iterations),
                          overrides=overrides, device=device)  # fmt: skip
            for loss, variant in variants(summary):
                new = evaluate(variant, data, config=config, device=device)
                rows += [{**r, "variant": loss} for r in new]
                print(table(new[-1:]), flush=True)
    append_rows(RESULTS, rows)
    print(table(rows))


if __name__ == "__main__":
    main()
