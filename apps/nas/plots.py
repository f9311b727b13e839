"""Scatter of proxy accuracy against ground-truth accuracy, one panel per proxy."""

from __future__ import annotations

import math
from pathlib import Path

from datadistill.plots import plt, save


def proxy_scatter(rows: list[dict], truth: dict[str, float], path: str | Path, *, title: str):
    """Each panel: one dot per cell; the title carries the proxy's rho, tau and seconds."""
    n = len(rows)
    cols = min(4, max(n, 1))
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        cells = sorted(set(row["proxy_acc"]) & set(truth))
        xs, ys = [100 * truth[a] for a in cells], [100 * row["proxy_acc"][a] for a in cells]
        ax.scatter(xs, ys, s=12)
        _zoom_past_chance(ax, xs, ys)
        ax.set_title(
            f"{row['method']} IPC {row['ipc']}\nrho {row['spearman']:.2f}, tau "
            f"{row['kendall']:.2f}, {row['proxy_seconds']:.1f} s/cell",
            fontsize=8,
        )
        ax.set_xlabel("ground truth acc %", fontsize=8)
        ax.set_ylabel("proxy acc %", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _zoom_past_chance(ax, xs: list[float], ys: list[float]) -> None:
    """Frame the cells that learn: cut-off cells (all-`none` paths) sit at chance on both
    axes and would squeeze the rest into a corner; they stay counted in rho and tau, and
    the panel says how many were left outside the frame."""
    learnt = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 1.5 * min(xs)]
    if not learnt or len(learnt) == len(xs):
        return
    lx, ly = zip(*learnt, strict=True)
    pad_x, pad_y = max(0.5, 0.05 * (max(lx) - min(lx))), max(0.5, 0.05 * (max(ly) - min(ly)))
    ax.set_xlim(min(lx) - pad_x, max(lx) + pad_x)
    ax.set_ylim(min(ly) - pad_y, max(ly) + pad_y)
    ax.text(
        0.02, 0.98, f"{len(xs) - len(learnt)} cell(s) at chance not shown", fontsize=6,
        transform=ax.transAxes, va="top",
    )  # fmt: skip
