"""Transferability of the committed Fashion-MNIST IPC-10 summaries (issue 11, cornerstone 3).

Each method's summary behind its performance-table row (ConvNet, 300 epochs, DSA, 5 runs)
is trained, under the same protocol, on MLP, LeNet, AlexNet, VGG-11 and ResNet-18; the
ConvNet column is the performance table's own row. Rows go to
experiments/results/transfer_fmnist.json (the engine's schema, `summary` naming the file);
`report_bench.py` turns them into fmnist_transfer.md/.png.

Why a script and not the sweep: the sweep distils and then evaluates; these summaries exist
(distilled on an H200 or this CPU, at the iterations their rows say) and only their
evaluation on other architectures is missing. On one 2-core CPU thread a 300-step run costs
(300 epochs of 100 images, plus the 10,000 test images): MLP 1 s, LeNet 5 s, VGG-11 245 s,
AlexNet 470 s, ResNet-18 890 s, so the heavy three get `--heavy-runs` (default 1) fresh
models and the rest `--runs` (5); the table marks a one-run cell.

Resumable and parallel: a (method, arch) cell whose row holds enough runs is skipped, and a
worker holds a lock on the cell it trains, so N copies of the same command share the work
(`&` twice on 2 cores) and a killed worker loses only its current cell.

    python experiments/transfer_fmnist.py [--methods dm mtt ...] [--archs mlp lenet ...]
        [--runs 5] [--heavy-runs 1] [--time-limit SECONDS] [--device auto]
"""

from __future__ import annotations

import argparse
import fcntl
import time
from pathlib import Path

from datadistill import data as datasets
from datadistill.bench import tables as bench_tables
from datadistill.bench.cells import Cell
from datadistill.data import Dataset
from datadistill.distill import resolve_device
from datadistill.evaluate import EvalConfig, evaluate
from datadistill.loop import SUMMARY_FILE
from datadistill.results import append_rows, load_rows, table
from datadistill.summary import Summary
from datadistill.train import QUICK

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "experiments" / "results"
RESULTS = RESULTS_DIR / "transfer_fmnist.json"
LOCKS = ROOT / "runs" / "transfer_fmnist_locks"
DATASET, IPC = "fashion-mnist", 10
CHEAP = ("mlp", "lenet")
HEAVY = ("vgg11", "alexnet", "resnet18")  # cheapest first


def table_rows() -> dict[str, dict]:
    """method -> its IPC-10 performance-table row (pooled), with the file it came from."""
    rows = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        if path == RESULTS:
            continue
        try:
            loaded = load_rows(path)
        except ValueError:
            continue
        if not isinstance(loaded, list):
            continue
        for r in loaded:
            if isinstance(r, dict) and r.get("dataset") == DATASET and "method" in r:
                rows.append({**r, "_file": path})
    cells = bench_tables.main_rows(rows)
    return {m: r for (m, ipc), r in cells.items() if ipc == IPC}


def summary_path(row: dict, data: Dataset) -> Path | None:
    """The summary file of `row`: its run folder (named as `datadistill.bench.cells.Cell`
    names it) under the folder named after its results file, at the row's iterations."""
    for seed in row["seeds"]:
        cell = Cell(row["method"], IPC, seed=seed)
        path = row["_file"].with_suffix("") / cell.folder(data) / SUMMARY_FILE
        if path.exists():
            summary = Summary.load(path)
            if summary.extra.get("run", {}).get("iterations", 0) == row["iterations"]:
                return path
    return None


def jobs(methods: list[str], archs: list[str], found: dict[str, dict]) -> list[tuple[str, str]]:
    """Cheap architectures for every method first, then the heavy ones a method at a time:
    random and herding first (the baselines every other cell is read against), then the
    learnt methods from the best ConvNet accuracy down."""
    ordered = [m for m in ("random", "herding") if m in methods] + sorted(
        (m for m in methods if m not in ("random", "herding")),
        key=lambda m: -found[m]["acc_mean"],
    )
    return [(m, a) for a in archs if a in CHEAP for m in ordered] + [
        (m, a) for m in ordered for a in archs if a not in CHEAP
    ]


def done(method: str, arch: str, row: dict, runs: int) -> bool:
    for r in load_rows(RESULTS):
        if (r["method"], r["arch"], r["iterations"], r.get("variant")) == (
            method, arch, row["iterations"], None
        ):  # fmt: skip
            if r["runs"] >= runs and r.get("eval_epochs") == QUICK.epochs:
                return True
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", help="default: every method with an IPC-10 row")
    p.add_argument("--archs", nargs="+", default=[*CHEAP, *HEAVY])
    p.add_argument("--runs", type=int, default=5, help="fresh models on MLP and LeNet")
    p.add_argument("--heavy-runs", type=int, default=1, help="on VGG-11, AlexNet, ResNet-18")
    p.add_argument("--time-limit", type=float, help="start no cell after this many seconds")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    started = time.monotonic()
    found = table_rows()
    methods = args.methods or sorted(found)
    unknown = sorted(set(methods) - set(found))
    if unknown:
        raise SystemExit(f"no IPC-{IPC} {DATASET} row for {', '.join(unknown)}; "
                         f"choose from {', '.join(sorted(found))}")  # fmt: skip
    data = datasets.load(DATASET)
    paths = {m: summary_path(found[m], data) for m in methods}
    for m in [m for m, path in paths.items() if path is None]:
        print(f"skip {m}: no summary at its row's {found[m]['iterations']} iterations "
              "(one too big to commit is rebuilt by the command in .gitignore)")  # fmt: skip
    device = resolve_device(args.device)
    LOCKS.mkdir(parents=True, exist_ok=True)
    written = []
    for method, arch in jobs([m for m in methods if paths[m]], args.archs, found):
        if args.time_limit and time.monotonic() - started > args.time_limit:
            print(f"time limit {args.time_limit:.0f} s reached; run again to go on")
            break
        runs = args.heavy_runs if arch in HEAVY else args.runs
        with open(LOCKS / f"{method}-{arch}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another worker trains this cell
            if done(method, arch, found[method], runs):
                continue
            summary = Summary.load(paths[method])
            config = EvalConfig(archs=(arch,), runs=runs, train=QUICK)
            (row,) = evaluate(summary, data, config=config, device=device, progress=False)
            row |= {"summary": str(paths[method].relative_to(ROOT)), "variant": None}
            append_rows(RESULTS, [row])
            written.append(row)
            print(f"{method} on {arch}: {100 * row['acc_mean']:.2f}% ({runs} run(s), "
                  f"{row['eval_seconds']:.0f} s)", flush=True)  # fmt: skip
    if written:
        print(table(written))


if __name__ == "__main__":
    main()
