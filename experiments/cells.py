"""Benchmark cells for any methods: distil (or select), evaluate, append rows. Resumable.

The family issues' experiments are lists of cells; this script runs them under the quick
protocol (ConvNet, 300 epochs, DSA, 5 runs) and writes rows to
experiments/results/<name>.json, with each cell's summary, grid, metrics and checkpoint
under experiments/results/<name>/ (committed, so another machine can resume a cell).

    python experiments/cells.py --name gradient_fmnist --methods dc dsa --ipc 1 10 \
        --iterations 1000 --time-limit 3600
    python experiments/cells.py --name factorised_fmnist --methods dm kfs --bytes 31440
    python experiments/cells.py --name frepo_validation --methods frepo --ipc 1 \
        --validation 1000 --variant adam-1e-3 --set optimizer=adam lr_img=1e-3

With --validation N the cells are judged on N held-out training images per class instead of
the test set (a hyperparameter search); their rows carry the variant `val-...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datadistill import budget as budgets
from datadistill import data as datasets
from datadistill import methods
from datadistill.bench.cells import Cell, run_cell
from datadistill.distill import resolve_device
from datadistill.evaluate import EvalConfig
from datadistill.plots import accuracy_curves, variant_bars
from datadistill.results import load_rows, table
from datadistill.train import QUICK, TrainConfig

RESULTS = Path("experiments/results")


def parse_sets(items: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, got '{item}'")
        pairs.append((key, value))
    return tuple(pairs)


def variant_name(args, budget: str | None) -> str | None:
    """Tells apart cells of one method: byte budget, user's name, validation split."""
    parts = [p for p in (budget, args.variant) if p]
    if args.validation:
        parts.insert(0, f"val{args.validation}")
    return "-".join(parts) or None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="results file stem, e.g. gradient_fmnist")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    p.add_argument(
        "--bytes",
        type=int,
        nargs="+",
        help="storage budgets in bytes, instead of --ipc (a factorised method at --ipc N is "
        "already charged N real images' bytes)",
    )
    p.add_argument("--iterations", type=int, help="learnt methods: outer iterations")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="method settings")
    p.add_argument("--seed", type=int, default=0, help="distillation seed (a new run folder)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=QUICK.epochs)
    p.add_argument("--device", default="auto")
    p.add_argument("--time-limit", type=float, help="seconds per distillation before it stops")
    p.add_argument(
        "--validation",
        type=int,
        metavar="N",
        help="evaluate on N held-out training images per class, never the test set",
    )
    p.add_argument("--variant", help="name for cells whose --set differs from the defaults")
    p.add_argument(
        "--evaluate-partial",
        action="store_true",
        help="evaluate a run stopped by --time-limit (its rows say the iterations reached)",
    )
    args = p.parse_args()

    for name in args.methods:
        methods.get(name)  # unknown names fail before any work
    data = datasets.load(args.dataset)
    if args.validation:
        data = datasets.holdout(data, args.validation)
    device = resolve_device(args.device)
    results = RESULTS / f"{args.name}.json"
    config = EvalConfig(archs=("convnet",), runs=args.runs, train=TrainConfig(epochs=args.epochs))
    overrides = parse_sets(args.set)
    for ipc_asked, nbytes in (
        [(i, None) for i in args.ipc] if not args.bytes else [(0, b) for b in args.bytes]
    ):
        for name in args.methods:
            method = methods.get(name)
            learnt = method.learnt
            ipc, budget = budgets.resolve(method, data.spec, ipc=ipc_asked, nbytes=nbytes)
            cell = Cell(
                name,
                ipc,
                iterations=args.iterations if learnt else None,
                seed=args.seed,
                overrides=(*budget.items(), *overrides) if learnt else (),
                variant=variant_name(args, f"{nbytes}B" if budget else None),
            )
            rows = run_cell(
                cell,
                data,
                config=config,
                results=results,
                runs_dir=RESULTS / args.name,
                device=device,
                time_limit=args.time_limit,
                evaluate_partial=args.evaluate_partial,
            )
            print(
                table(rows) if rows else f"{name} ipc{ipc}: stopped early, run again to resume",
                flush=True,
            )
    rows = [r for r in load_rows(results) if r["eval_epochs"] == args.epochs]
    rows.sort(key=lambda r: (r["ipc"], r["method"]))
    print(table(rows))
    plot = results.with_suffix(".png")
    if args.epochs != QUICK.epochs:
        plot = results.with_name(f"{results.stem}_{args.epochs}ep.png")
    if args.validation:  # a search: one bar per setting, on the held-out split
        title = f"{args.dataset}: {args.validation} training images a class held out"
        variant_bars(rows, plot, title=title, ylabel="validation accuracy (%)")
    else:
        accuracy_curves(rows, plot, title=f"{args.dataset}, {args.epochs} ep")


if __name__ == "__main__":
    main()
