"""Pictures of a ranking study: proxy against ground truth per cell, and rho against cost."""

from __future__ import annotations

import math
from pathlib import Path

from datadistill.plots import plt, save

KIND_COLOURS = {"zero-cost": "tab:red", "cheap-train": "tab:gray", "random-subset": "tab:blue",
                "summary": "tab:green"}  # fmt: skip


def _interval(row: dict, key: str) -> str:
    ci = row.get(f"{key}_ci")
    return f"{row[key]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _name(row: dict) -> str:
    if row["variant"] == "proxy=zero-cost":
        return f"{row['method']} (zero-cost)"
    return f"{row['method']} IPC {row['ipc']}"


def proxy_scatter(rows: list[dict], truth: dict[str, float], path: str | Path, *, title: str):
    """Each panel: one dot per cell; the title carries the proxy's rho and tau with their
    bootstrap intervals, and its seconds per cell. Zero-cost scores spanning decades
    (synflow) are drawn on a log axis."""
    n = len(rows)
    cols = min(4, max(n, 1))
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 3.1 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        accuracy = "proxy_acc" in row
        scores = row["proxy_acc"] if accuracy else row["proxy_score"]
        cells = sorted(set(scores) & set(truth))
        xs = [100 * truth[a] for a in cells]
        ys = [(100 if accuracy else 1) * scores[a] for a in cells]
        ax.scatter(xs, ys, s=12)
        zoom_past_chance(ax, xs, ys, zoom_y=accuracy)
        positive = [y for y in ys if y > 0]
        if not accuracy and positive and max(positive) / min(positive) > 1e3:
            ax.set_yscale("log")  # a score of 0 (a cut-off cell) stays counted, off the axis
            ax.set_ylim(min(positive) / 2, max(positive) * 2)
        ax.set_title(
            f"{_name(row)}\nrho {_interval(row, 'spearman')}\ntau {_interval(row, 'kendall')}, "
            f"{row['proxy_seconds']:.2g} s/cell",
            fontsize=7,
        )
        ax.set_xlabel("ground truth acc %", fontsize=8)
        ax.set_ylabel("proxy acc %" if accuracy else f"{row['method']} score", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def rho_against_cost(rows: list[dict], path: str | Path, *, title: str, truth_seconds=None):
    """Spearman with its 95% interval against seconds per cell (log), one point per proxy.

    Seconds compare only on one machine: each point's marker says where it was timed
    (circle: a GPU, square: this CPU), and the ground truth's cost is a dashed line.
    """
    fig, ax = plt.subplots(figsize=(10.5, 5.6))
    for i, row in enumerate(sorted(rows, key=lambda r: (r["proxy_seconds"], r["spearman"]))):
        kind = row["variant"].split("=")[1]
        kind = next((k for k in KIND_COLOURS if kind.startswith(k)), "summary")
        ci = row.get("spearman_ci") or [row["spearman"]] * 2
        gpu = "cuda" in str(row.get("device", ""))
        ax.errorbar(
            row["proxy_seconds"], row["spearman"],
            yerr=[[row["spearman"] - ci[0]], [ci[1] - row["spearman"]]],
            fmt="o" if gpu else "s", color=KIND_COLOURS[kind], capsize=3, ms=5,
            mfc=KIND_COLOURS[kind] if gpu else "white",
        )  # fmt: skip
        tag = row["variant"].split("=")[1].removeprefix(kind).strip("-")
        label = _name(row).replace(" (zero-cost)", "") + (f" {tag}" if tag else "")
        ax.annotate(label, (row["proxy_seconds"], row["spearman"]), fontsize=6,
                    xytext=(4, 6 * (i % 3) - 6), textcoords="offset points")  # fmt: skip
    if truth_seconds:
        ax.axvline(truth_seconds, ls="--", color="k", lw=0.8)
        ax.annotate("ground truth (GPU)", (truth_seconds, -0.45), fontsize=7, rotation=90)
    for kind, colour in KIND_COLOURS.items():
        ax.plot([], [], "o", color=colour, label=kind)
    ax.plot([], [], "o", color="k", label="timed on a GPU (H200)")
    ax.plot([], [], "s", color="k", mfc="white", label="timed on this CPU")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("proxy cost, seconds per cell (measured)")
    ax.set_ylabel("Spearman rho with ground truth (95% bootstrap CI)")
    ax.set_ylim(-0.5, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def zoom_past_chance(ax, xs: list[float], ys: list[float], *, zoom_y: bool = True) -> None:
    """Frame the cells that learn: cut-off cells (all-`none` paths) sit at chance on both
    axes and would squeeze the rest into a corner; they stay counted in rho and tau, and
    the panel says how many were left outside the frame."""
    learnt = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 1.5 * min(xs)]
    if not learnt or len(learnt) == len(xs):
        return
    lx, ly = zip(*learnt, strict=True)
    pad_x, pad_y = max(0.5, 0.05 * (max(lx) - min(lx))), max(0.5, 0.05 * (max(ly) - min(ly)))
    ax.set_xlim(min(lx) - pad_x, max(lx) + pad_x)
    if zoom_y:
        ax.set_ylim(min(ly) - pad_y, max(ly) + pad_y)
    ax.text(
        0.02, 0.98, f"{len(xs) - len(learnt)} cell(s) at chance not shown", fontsize=6,
        transform=ax.transAxes, va="top",
    )  # fmt: skip
