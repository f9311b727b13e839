"""The benchmark's four tables and figures from result files (never typed by hand).

    python experiments/report_bench.py experiments/results/quick_digits.json
    python experiments/report_bench.py experiments/results/*.json --dataset fashion-mnist \
        --name fmnist

writes into --out (default experiments/results/), for NAME (default: the file's stem):
(1) NAME_performance.md/.csv: method x IPC, mean ± std beside the published figure
    (experiments/published.yaml); (2) budget_NAME.png: accuracy against IPC and against
stored bytes; (3) NAME_transfer.md/.csv/.png: the IPC-10 summaries on every architecture
evaluated; (4) NAME_cost.md/.csv: seconds per iteration, total seconds, peak memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from datadistill.atomic import write_bytes
from datadistill.bench import plots as bench_plots
from datadistill.bench import tables as bench_tables
from datadistill.results import load_rows

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "experiments" / "published.yaml"


def published(path: Path = PUBLISHED) -> dict:
    """dataset -> method -> ipc -> {acc, std, source}: figures from the papers' tables."""
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


def write(rows: list[dict], *, dataset: str, name: str, out: Path, transfer_ipc: int) -> list[Path]:
    """Every table and figure for `dataset`'s rows; returns the paths written."""
    paths = []

    def text(suffix: str, content: str) -> None:
        paths.append(write_bytes(out / f"{name}_{suffix}", content.encode()))

    md, table = bench_tables.performance(rows, dataset=dataset, published=published())
    text("performance.md", md + "\n")
    text("performance.csv", table)
    paths.append(bench_plots.efficiency(rows, out / f"budget_{name}.png", dataset=dataset))
    cells = bench_tables.transfer_rows(
        (r for r in rows if r["dataset"] == dataset), ipc=transfer_ipc
    )
    if len(bench_tables.transfer_archs(cells)) > 1:  # one architecture transfers nowhere
        md, table = bench_tables.transferability(rows, dataset=dataset, ipc=transfer_ipc)
        text("transfer.md", md + "\n")
        text("transfer.csv", table)
        paths.append(
            bench_plots.transfer_heatmap(
                rows, out / f"{name}_transfer.png", dataset=dataset, ipc=transfer_ipc
            )
        )
    md, table = bench_tables.cost(rows, dataset=dataset)
    text("cost.md", md + "\n")
    text("cost.csv", table)
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="result files (JSON lists of rows)")
    p.add_argument("--dataset", help="default: the only dataset in the rows")
    p.add_argument("--name", help="output prefix (default: the results file's stem)")
    p.add_argument("--transfer-ipc", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "results")
    args = p.parse_args()
    rows = [r for path in args.results for r in load_rows(path)]
    found = sorted({r["dataset"] for r in rows})
    dataset = args.dataset or (found[0] if len(found) == 1 else None)
    if dataset is None or dataset not in found:
        raise SystemExit(f"choose --dataset from {', '.join(found) or 'none (no rows)'}")
    name = args.name or (args.results[0].stem if len(args.results) == 1 else dataset)
    for path in write(
        rows, dataset=dataset, name=name, out=args.out, transfer_ipc=args.transfer_ipc
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
