"""Scatter of proxy accuracy against ground-truth accuracy, one panel per proxy."""

from __future__ import annotations

import math
from pathlib import Path

from core.plots import plt, save


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
