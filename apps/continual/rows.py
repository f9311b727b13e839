"""StreamResults -> result rows (datadistill.results schema): one per class order, one mean +- std.

A row's `acc_mean` is Avalanche's final stream accuracy; `forgetting_*` its stream
forgetting; `curve_*` the average accuracy over seen experiences after each experience
(what the experiment plots); `images`/`stored_bytes` the memory actually held at the end.
"""

from __future__ import annotations

import statistics

from datadistill.results import command_line, fmt_acc, fmt_bytes
from datadistill_apps.continual.loop import StreamResult
from datadistill_apps.continual.strategies import DISTILLED, RECALL


def _std(xs: list[float]) -> float:
    """The population standard deviation, the convention of every row (core's evaluation)."""
    return statistics.pstdev(xs) if xs else 0.0


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


def seed_row(r: StreamResult, *, dataset: str, method: str, iterations: int, arch: str) -> dict:
    """The row of one strategy on one class order."""
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
    if r.memory_file is not None:
        row["summary"] = r.memory_file  # results.append_rows adds its sha256
    return row


def memoryless_copy(row: dict, memory: int) -> dict:
    """`row` of a strategy that keeps no memory (naive), filed under another memory.

    Naive's stream never reads the memory size, so a second run would repeat the
    first; the copy says where it came from instead of spending the time again.
    """
    if row.get("images", 0) != 0 or row.get("strategy") != "naive":
        raise ValueError("only a strategy that holds no memory (naive) can be reused")
    seed = row["seed"]
    return {
        **row,
        "ipc": memory,
        "memory_per_class": memory,
        "variant": f"strategy=naive,memory={memory},order={seed}",
        "reused_from": row.get("reused_from", f"memory={row['memory_per_class']}"),
        "command": command_line(),
    }


GROUP = ("method", "strategy", "memory_per_class", "dataset", "arch", "iterations", "epochs")


def aggregate(seed_rows: list[dict]) -> list[dict]:
    """Mean +- std over class orders, one row per (method, strategy, memory, ...); its command
    runs the commands that made its orders' rows, in turn."""
    groups: dict[tuple, list[dict]] = {}
    for r in seed_rows:
        if "seed" in r and r["runs"] == 1:
            groups.setdefault(tuple(r.get(k) for k in GROUP), []).append(r)
    out = []
    for rs in groups.values():
        row = {k: v for k, v in rs[0].items() if k not in _PER_SEED}
        accs, forg = [r["acc_mean"] for r in rs], [r["forgetting_mean"] for r in rs]
        curves = list(zip(*(r["curve_mean"] for r in rs), strict=True))
        row.update(
            variant=f"strategy={row['strategy']},memory={row['memory_per_class']}",
            seeds=sorted(r["seed"] for r in rs),
            runs=len(rs),
            acc_mean=statistics.fmean(accs),
            acc_std=_std(accs),
            forgetting_mean=statistics.fmean(forg),
            forgetting_std=_std(forg),
            curve_mean=[statistics.fmean(c) for c in curves],
            curve_std=[_std(list(c)) for c in curves],
            seconds=round(sum(r["seconds"] for r in rs), 1),
            command=" && ".join(dict.fromkeys(r["command"] for r in rs)),
        )
        out.append(row)
    return out


_PER_SEED = ("seed", "acc_matrix", "class_order", "buffer_sizes", "summary", "summary_sha256")


def rows(
    results: list[StreamResult], *, dataset: str, method: str, iterations: int, arch: str
) -> list[dict]:
    """Per-order rows plus one aggregate row per (strategy, memory)."""
    per = [
        seed_row(r, dataset=dataset, method=method, iterations=iterations, arch=arch)
        for r in results
    ]
    return per + aggregate(per)


def _forgetting(r: dict) -> str:
    return f"{100 * r['forgetting_mean']:.2f} ± {100 * r['forgetting_std']:.2f}"


def _epochs(r: dict) -> str:
    """Stream strategies see each experience `epochs` times; recall ones retrain from scratch."""
    if r["strategy"] in RECALL and "recall_epochs" in r:
        return f"{r['recall_epochs']} from scratch"
    return str(r.get("epochs", "-"))


COLUMNS = [
    ("strategy", lambda r: r["strategy"]),
    ("method", lambda r: r["method"]),
    ("dataset", lambda r: r["dataset"]),
    ("memory/class", lambda r: str(r["ipc"])),
    ("distill its/exp", lambda r: str(r["iterations"]) if r["iterations"] else "-"),
    ("epochs/exp", _epochs),
    ("images", lambda r: str(r["images"])),
    ("bytes", lambda r: fmt_bytes(r["stored_bytes"])),
    ("final acc %", fmt_acc),
    ("forgetting %", _forgetting),
    ("orders", lambda r: str(r["runs"])),
]
