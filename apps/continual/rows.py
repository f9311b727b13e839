"""StreamResults -> result rows (core.results schema): one per class order, one mean +- std.

A row's `acc_mean` is Avalanche's final stream accuracy; `forgetting_*` its stream
forgetting; `curve_*` the average accuracy over seen experiences after each experience
(what the experiment plots); `images`/`stored_bytes` the memory actually held at the end.
"""

from __future__ import annotations

import statistics

from apps.continual.loop import StreamResult
from apps.continual.strategies import DISTILLED
from core.results import command_line, fmt_acc, fmt_bytes


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _base(r: StreamResult, *, dataset: str, method: str, iterations: int, arch: str) -> dict:
    distilled = r.strategy in DISTILLED
    images = r.buffer_sizes[-1]["images"] if r.buffer_sizes else 0
    return {
        "method": method if distilled else r.strategy,
        "dataset": dataset,
        "ipc": r.memory,
        "iterations": iterations if distilled else 0,
        "arch": arch,
        "images": images,
        "stored_bytes": r.stored_bytes,
        "sec_per_iter": None,
        "peak_mem_mb": None,
        "command": command_line(),
        "strategy": r.strategy,
        "memory_per_class": r.memory,
    }


def rows(
    results: list[StreamResult], *, dataset: str, method: str, iterations: int, arch: str
) -> list[dict]:
    """Per-order rows plus one aggregate row per (strategy, memory)."""
    out, groups = [], {}
    for r in results:
        row = _base(r, dataset=dataset, method=method, iterations=iterations, arch=arch)
        row.update(
            variant=f"strategy={r.strategy},memory={r.memory},order={r.seed}",
            seed=r.seed,
            runs=1,
            acc_mean=r.final_acc,
            acc_std=0.0,
            forgetting_mean=r.forgetting,
            forgetting_std=0.0,
            curve_mean=r.curve,
            acc_matrix=r.acc_matrix,
            class_order=r.order,
            buffer_sizes=r.buffer_sizes,
            seconds=round(r.seconds, 1),
        )
        out.append(row)
        groups.setdefault((r.strategy, r.memory), []).append(r)
    for (strategy, memory), rs in groups.items():
        row = _base(rs[0], dataset=dataset, method=method, iterations=iterations, arch=arch)
        accs, forg = [r.final_acc for r in rs], [r.forgetting for r in rs]
        curves = list(zip(*(r.curve for r in rs), strict=True))
        row.update(
            variant=f"strategy={strategy},memory={memory}",
            seeds=[r.seed for r in rs],
            runs=len(rs),
            acc_mean=statistics.fmean(accs),
            acc_std=_std(accs),
            forgetting_mean=statistics.fmean(forg),
            forgetting_std=_std(forg),
            curve_mean=[statistics.fmean(c) for c in curves],
            curve_std=[_std(list(c)) for c in curves],
            seconds=round(sum(r.seconds for r in rs), 1),
        )
        out.append(row)
    return out


def _forgetting(r: dict) -> str:
    return f"{100 * r['forgetting_mean']:.2f} ± {100 * r['forgetting_std']:.2f}"


COLUMNS = [
    ("strategy", lambda r: r["strategy"]),
    ("method", lambda r: r["method"]),
    ("dataset", lambda r: r["dataset"]),
    ("memory/class", lambda r: str(r["ipc"])),
    ("images", lambda r: str(r["images"])),
    ("bytes", lambda r: fmt_bytes(r["stored_bytes"])),
    ("final acc %", fmt_acc),
    ("forgetting %", _forgetting),
    ("orders", lambda r: str(r["runs"])),
]
