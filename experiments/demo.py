"""`make demo`: the main job on the embedded default data, in a few minutes on 2 CPU cores.

Distils scikit-learn's 8x8 digits with DM at IPC 1 and 10, makes the random, herding and
k-center baselines, evaluates every summary with the quick protocol (ConvNet, 300 epochs,
DSA), prints a table and writes summaries, PNG grids and result rows under runs/demo/.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("DATADISTILL_COMPILE", "0")  # 8x8 images: compiling costs more than it saves

from datadistill import data as datasets  # noqa: E402
from datadistill.bench.cells import Cell, run_cell  # noqa: E402
from datadistill.distill import resolve_device  # noqa: E402
from datadistill.evaluate import EvalConfig  # noqa: E402
from datadistill.plots import accuracy_curves  # noqa: E402
from datadistill.results import table  # noqa: E402
from datadistill.train import QUICK  # noqa: E402

OUT = Path("runs/demo")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", type=int, default=3, help="fresh models per summary")
    p.add_argument("--dm-iterations", type=int, default=100)
    args = p.parse_args()

    start = time.monotonic()
    data = datasets.load("digits")
    device = resolve_device(args.device)
    config = EvalConfig(runs=args.runs, train=QUICK)
    results = OUT / "results.json"
    rows = []
    for ipc in (1, 10):
        for method in ("random", "herding", "kcenter", "dm"):
            cell = Cell(method, ipc, iterations=args.dm_iterations if method == "dm" else None)
            rows += run_cell(
                cell, data, config=config, results=results, runs_dir=OUT, device=device
            )
    print(table(rows))
    accuracy_curves(rows, OUT / "accuracy.png", title="digits (8x8), ConvNet, 300 epochs")
    print(f"\nsummaries and grids: {OUT}/*/  plot: {OUT / 'accuracy.png'}  rows: {results}")
    print(f"demo finished in {time.monotonic() - start:.0f} s on {device}")


if __name__ == "__main__":
    main()
