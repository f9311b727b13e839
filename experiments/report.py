"""Regenerate the README's results tables from experiments/results/*.json (never by hand).

Four blocks: every row (between the results markers); the benchmark's performance table
for Fashion-MNIST, method x IPC beside the published figures (between the bench markers;
experiments/report_bench.py writes it and the other tables and figures to files); the
continual-learning strategies (between the continual markers); and the NAS proxies' rank
agreement (between the nas markers).

python experiments/report.py          # rewrite README.md between the markers
python experiments/report.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

from datadistill.bench import tables as bench_tables
from datadistill.results import fmt_acc, fmt_bytes, load_rows, table

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"
CONTINUAL_START, CONTINUAL_END = "<!-- continual:start -->", "<!-- continual:end -->"
NAS_START, NAS_END = "<!-- nas:start -->", "<!-- nas:end -->"
TRANSFER_START, TRANSFER_END = "<!-- transfer:start -->", "<!-- transfer:end -->"
BENCH_DATASET = "fashion-mnist"
METHOD_ORDER = ["random", "herding", "kcenter", "dm"]


def ran_on(row: dict) -> str:
    """Where a row was measured: its s/iter compares only with rows run the same way."""
    device = str(row.get("device", "cpu"))
    card = device[device.find("NVIDIA ") + 7 : -1] if "NVIDIA " in device else device
    note = row.get("note", "")
    if note.startswith("GPU batch"):
        return f"{card}, shared"
    if note.startswith("resumed across devices"):
        return f"cpu + {card}"
    return card


def sec_per_iter(row: dict) -> str:
    """Shared-GPU and mixed-device timings are not speed figures: left out of the table."""
    if row.get("sec_per_iter") is None or row.get("note"):
        return "-"
    return f"{row['sec_per_iter']:.2f}"


def results_table(folder: Path = ROOT / "experiments" / "results") -> str:
    rows = [r for p in sorted(folder.glob("*.json")) for r in load_rows(p)]
    rows = [r for r in rows if r.get("variant") is None]
    if not rows:
        return "_No results yet._"
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(
        key=lambda r: (r["dataset"], r["arch"], r["ipc"], order.get(r["method"], 99), r["method"])
    )
    lines = [
        "| dataset | arch | IPC | method | iterations | images | stored | accuracy % | runs "
        "| epochs | run on | s/iter | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spi = sec_per_iter(r)
        mem = "-" if not r.get("peak_mem_mb") else f"{r['peak_mem_mb']:.0f}"
        lines.append(
            f"| {r['dataset']} | {r['arch']} | {r['ipc']} | {r['method']} | {r['iterations']} "
            f"| {r['images']} | {fmt_bytes(r['stored_bytes'])} | {fmt_acc(r)} | {r['runs']} "
            f"| {r.get('eval_epochs', '-')} | {ran_on(r)} | {spi} | {mem} |"
        )
    return "\n".join(lines)


def bench_table(folder: Path = ROOT / "experiments" / "results") -> str:
    """The performance table (method x IPC, ours beside published) of BENCH_DATASET."""
    rows = [r for p in sorted(folder.glob("*.json")) for r in load_rows(p)]
    if not any(r["dataset"] == BENCH_DATASET for r in rows):
        return "_No results yet._"
    spec = importlib.util.spec_from_file_location("report_bench", Path(__file__).with_name(
        "report_bench.py"))  # fmt: skip
    report_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report_bench)
    md, _ = bench_tables.performance(
        rows, dataset=BENCH_DATASET, published=report_bench.published()
    )
    return md


def transfer_table(folder: Path = ROOT / "experiments" / "results", ipc: int = 10) -> str:
    """The transferability table (method x architecture at `ipc`) of BENCH_DATASET."""
    rows = [r for p in sorted(folder.glob("*.json")) for r in load_rows(p)]
    if not any(r["dataset"] == BENCH_DATASET and r["ipc"] == ipc for r in rows):
        return "_No results yet._"
    md, _ = bench_tables.transferability(rows, dataset=BENCH_DATASET, ipc=ipc)
    return md


def continual_table(folder: Path = ROOT / "experiments" / "results") -> str:
    """Final accuracy and forgetting per strategy, mean +- std over the class orders run.

    Aggregated here from the per-order rows, so a sweep still running (whose mean rows
    are written only at its end) shows what has finished, with its number of orders.
    """
    per_order = [
        r
        for p in sorted(folder.glob("continual_*.json"))
        for r in load_rows(p)
        if r.get("runs") == 1 and "seed" in r
    ]
    if not per_order:
        return "_No results yet._"
    from datadistill_apps.continual.rows import (  # Avalanche: only when rows exist
        COLUMNS,
        aggregate,
    )

    means = sorted(aggregate(per_order), key=lambda r: (r["dataset"], r["ipc"], -r["acc_mean"]))
    return table(means, COLUMNS)


def _lr(row: dict) -> str:
    """The proxy's learning rate, read from its setting label (C8-N1-e100-lr0.01-b256-dsa)."""
    part = next((p for p in row.get("setting", "").split("-") if p.startswith("lr")), "lr?")
    return part[2:]


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


NAS_COLUMNS = [
    ("proxy", lambda r: r["method"]),
    ("kind", lambda r: re.sub(r"(-lr[0-9.e+-]+)?(-noaug)?$", "", r["variant"].split("=")[1])),
    ("IPC", lambda r: str(r["ipc"])),
    ("distill its", lambda r: str(r["iterations"] or "-")),
    ("images", lambda r: str(r["images"])),
    ("lr", _lr),
    ("aug", lambda r: "dsa" if r.get("setting", "").endswith("-dsa") else "none"),
    ("mean acc %", lambda r: f"{100 * r['acc_mean']:.1f}"),
    ("Spearman", lambda r: f"{r['spearman']:.3f}"),
    ("Kendall", lambda r: f"{r['kendall']:.3f}"),
    ("top-5", lambda r: f"{r['top5']:.1f}"),
    ("s/cell", lambda r: f"{r['proxy_seconds']:.1f}"),
    ("run on", ran_on),
    ("cost / truth", lambda r: _ratio(r.get("cost_ratio"))),
    ("seen / truth", lambda r: _ratio(r.get("images_seen_ratio"))),
]


def nas_table(folder: Path = ROOT / "experiments" / "results") -> str:
    """Every scored proxy of the NAS study: rank agreement with the ground truth, and cost."""
    rows = [r for p in sorted(folder.glob("nas_*.json")) for r in load_rows(p) if "spearman" in r]
    if not rows:
        return "_No results yet._"
    rows.sort(key=lambda r: (r["dataset"], _lr(r), r["variant"], r["method"], r["ipc"]))
    return table(rows, NAS_COLUMNS)


def render(readme: str, table: str, start: str = START, end: str = END) -> str:
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md lacks the markers {start} ... {end}")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def render_all(readme: str) -> str:
    readme = render(readme, results_table())
    readme = render(readme, continual_table(), CONTINUAL_START, CONTINUAL_END)
    readme = render(readme, nas_table(), NAS_START, NAS_END)
    readme = render(readme, transfer_table(), TRANSFER_START, TRANSFER_END)
    return render(readme, bench_table(), BENCH_START, BENCH_END)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    path = ROOT / "README.md"
    old = path.read_text()
    new = render_all(old)
    if args.check:
        if new != old:
            print("README.md results table is out of date: run python experiments/report.py")
            sys.exit(1)
        return
    path.write_text(new)
    print(f"updated {path}")


if __name__ == "__main__":
    main()
