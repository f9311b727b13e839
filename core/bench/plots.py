"""The benchmark's figures, drawn from result rows: efficiency (accuracy against images per
class and against stored bytes, the survey's efficiency cornerstone) and transferability (a
method x architecture heatmap). Rows are chosen as in `datadistill.bench_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from datadistill.bench.tables import (  # noqa: E402
    main_rows,
    method_order,
    most_runs,
    transfer_archs,
    transfer_rows,
)
from datadistill.plots import save  # noqa: E402


def efficiency(rows: list[dict], path: str | Path, *, dataset: str) -> Path:
    """Two panels: accuracy against IPC and against stored bytes (log x), random dashed.

    Where a method's curve meets the random baseline, distilling stops paying off.
    """
    cells = main_rows(r for r in rows if r["dataset"] == dataset)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    epochs = sorted({r.get("eval_epochs") for r in cells.values()} - {None})
    for n, method in enumerate(method_order(m for m, _ in cells)):
        rs = sorted((r for (m, _), r in cells.items() if m == method), key=lambda r: r["ipc"])
        style = (
            {"color": "black", "linestyle": "--", "linewidth": 2}
            if method == "random"
            else {"color": plt.cm.tab20(n % 20), "marker": "os^vD<>ph*"[n % 10]}
        )
        acc = [100 * r["acc_mean"] for r in rs]
        err = [100 * r["acc_std"] for r in rs]
        for ax, xs in zip(
            axes, ([r["ipc"] for r in rs], [r["stored_bytes"] / 1024 for r in rs]), strict=True
        ):
            ax.errorbar(xs, acc, yerr=err, capsize=3, label=method, **style)
    for ax, xlabel in zip(
        axes, ("images per class (IPC, log scale)", "stored bytes (KiB, log scale)"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    ipcs = sorted({i for _, i in cells})
    axes[0].set_xticks(ipcs, [str(i) for i in ipcs])
    axes[0].set_title("accuracy against summary size")
    axes[1].set_title("accuracy against storage (the efficiency cornerstone)")
    axes[1].legend(fontsize=8, ncol=2, loc="lower right")
    protocol = f"ConvNet, {'/'.join(map(str, epochs))} epochs" if epochs else "ConvNet"
    fig.suptitle(f"{dataset}: efficiency of every method ({protocol}; dashed: random subset)")
    return save(fig, path)


def transfer_heatmap(rows: list[dict], path: str | Path, *, dataset: str, ipc: int) -> Path:
    """Method x architecture accuracy of the IPC-`ipc` summaries, numbers in the cells."""
    cells = transfer_rows((r for r in rows if r["dataset"] == dataset), ipc=ipc)
    archs = transfer_archs(cells)
    names = method_order(m for m, _ in cells)
    grid = [[100 * cells[m, a]["acc_mean"] if (m, a) in cells else float("nan") for a in archs]
            for m in names]  # fmt: skip
    fig, ax = plt.subplots(figsize=(1.3 * len(archs) + 2.5, 0.45 * len(names) + 1.8))
    most = most_runs(cells)
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:  # not NaN
                fewer = cells[names[i], archs[j]]["runs"] < most  # a costly arch: said
                ax.text(j, i, f"{v:.1f}" + ("*" if fewer else ""), ha="center", va="center",
                        fontsize=8, color="white")  # fmt: skip
    ax.set_xticks(range(len(archs)), archs)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("architecture trained on the summary")
    ax.set_ylabel("method")
    epochs = sorted({r.get("eval_epochs") for r in cells.values()} - {None})
    fewest = min(r["runs"] for r in cells.values())
    note = f"; * {fewest} run{'s' if fewest > 1 else ''}, else {most}" if fewest < most else ""
    ax.set_title(
        f"{dataset}, IPC {ipc}: transferability ({'/'.join(map(str, epochs))} epochs{note})",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    return save(fig, path)


def accuracy_against_seconds(
    sweep: Sequence[dict[tuple[str, int], dict]],
    longer: dict[tuple[str, int], dict],
    path: str | Path,
    *,
    dataset: str,
    ipc: int,
    clock: str,
) -> Path:
    """Accuracy at `ipc` against seconds of distillation (log), one line per method joining
    its equal-compute points (`sweep`: the rows at each budget, seconds on `clock`) to its
    best at any budget (`longer`, wall seconds; hollow where a GPU ran it, so the seconds are
    a GPU's). Methods without distillation steps (random, coresets) are dashed lines across.

    Which methods gain from more compute is the slope of their line."""
    spent = "distill_cpu_seconds" if clock == "cpu" else "distill_seconds"
    fig, ax = plt.subplots(figsize=(8, 5))
    sources = [(rows, spent) for rows in sweep] + [(longer, "distill_seconds")]
    names = method_order(m for rows, _ in sources for m, i in rows if i == ipc)
    for n, method in enumerate(names):
        colour = plt.cm.tab20(n % 20)
        points = set()
        for rows, key in sources:
            r = rows.get((method, ipc))
            if r is not None and r.get(key):
                points.add((r[key], 100 * r["acc_mean"], "cuda" in str(r.get("device", ""))))
        r = next((rows[method, ipc] for rows, _ in sources if (method, ipc) in rows), None)
        if not points and r is not None and not r.get("iterations"):
            ax.axhline(100 * r["acc_mean"], color=colour, ls="--", lw=1, label=method)
            continue
        if not points:
            continue
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], "-", color=colour, label=method)
        for x, y, gpu in points:
            ax.plot(x, y, "o", color=colour, mfc="white" if gpu else colour, ms=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"seconds of distillation (log; equal compute: {clock} seconds on one thread)")
    ax.set_ylabel(f"test accuracy at IPC {ipc} (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title(f"{dataset}: equal compute and each method's best (hollow: on a GPU)")
    return save(fig, path)
