"""`make demo`: what distillation is for, on the embedded default data, in minutes on 2 CPU cores.

Distils scikit-learn's 8x8 digits with DM (Zhao & Bilen, WACV 2023: match the mean embedding
of real and synthetic images under randomly initialised networks) at IPC 1, makes the random
and herding baselines of the same size, evaluates every summary with the quick protocol
(ConvNet, 300 epochs, DSA), prints a table, and says whether the distilled summary (ten
images for the whole training set) beats random selection by more than both standard
deviations. It writes summaries, PNG grids and result rows under runs/demo/.

IPC 1 is where a summary's content matters most: at IPC 10 (`--ipcs 1 10`, about twice the
time) ten random real examples per class of these 8x8 images are already as good as DM's
at the demo's budget (within noise), which that table shows too.
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
from datadistill.results import fmt_acc, table  # noqa: E402
from datadistill.train import QUICK  # noqa: E402

OUT = Path("runs/demo")
HIGHLIGHT = 1  # the IPC whose comparison the demo states
METHODS = ("random", "herding", "dm")


def verdict(rows: list[dict], ipc: int = HIGHLIGHT, method: str = "dm") -> tuple[bool, str]:
    """Whether `method` beats random at `ipc` by more than both standard deviations, in words."""
    ours = next(r for r in rows if r["method"] == method and r["ipc"] == ipc)
    rand = next(r for r in rows if r["method"] == "random" and r["ipc"] == ipc)
    gap = 100 * (ours["acc_mean"] - rand["acc_mean"])
    noise = 100 * max(ours["acc_std"], rand["acc_std"])
    ahead = gap > noise
    said = "more than" if ahead else "NOT more than (within noise)"
    return ahead, (
        f"IPC {ipc} ({ours['images']} images): {method.upper()} {fmt_acc(ours)}% vs random "
        f"{fmt_acc(rand)}% (mean ± std over {ours['runs']} trainings): {gap:+.2f} points, "
        f"{said} the larger standard deviation ({noise:.2f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", type=int, default=3, help="fresh models per summary")
    # 400: DM on these 8x8 digits is chaotic at 200 (eager: 78.2% for seed 0, within noise of
    # random's 77.7; compiled: 83.6); at 400, seeds 0 / 1 / 2 gave 82.9 / 88.3 / 85.5 eager
    p.add_argument("--dm-iterations", type=int, default=400)
    p.add_argument("--ipcs", type=int, nargs="+", default=[HIGHLIGHT], help="must include 1")
    args = p.parse_args()
    if HIGHLIGHT not in args.ipcs:
        p.error(f"--ipcs must include {HIGHLIGHT}, the size the demo's verdict is about")

    start = time.monotonic()
    data = datasets.load("digits")
    device = resolve_device(args.device)
    config = EvalConfig(runs=args.runs, train=QUICK)
    results = OUT / "results.json"
    rows = []
    for ipc in args.ipcs:
        for method in METHODS:
            cell = Cell(method, ipc, iterations=args.dm_iterations if method == "dm" else None)
            rows += run_cell(
                cell, data, config=config, results=results, runs_dir=OUT, device=device
            )
    print(table(rows))
    print("\n" + verdict(rows)[1])
    if len(args.ipcs) > 1:
        accuracy_curves(rows, OUT / "accuracy.png", title="digits (8x8), ConvNet, 300 epochs")
    print(f"\nsummaries and grids: {OUT}/*/  rows: {results}")
    print(f"demo finished in {time.monotonic() - start:.0f} s on {device}")


if __name__ == "__main__":
    main()
