"""Accuracy against DM's embedder-pool size, beside fresh networks at equal iterations.

Reads the pool cells (experiments/results/pool_fmnist.json, `bash experiments/pool_cells.sh
sizes`) and fresh-network DM's row at the same dataset, IPC, seed and iterations
(experiments/results/engine_fmnist.json), and draws experiments/results/pool_size_fmnist.png:
mean +- std over the protocol's runs per pool size, fresh networks as a band.

    python experiments/pool_plot.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.plots import save
from datadistill.results import load_rows

RESULTS = Path("experiments/results")


def fresh_row(pooled: dict) -> dict | None:
    """Fresh-network DM's row matching `pooled` in everything but the pool."""
    same = ("dataset", "ipc", "iterations", "seed", "eval_epochs", "runs")
    for path in sorted(RESULTS.glob("*.json")):
        for r in load_rows(path):
            if (
                isinstance(r, dict)
                and r.get("method") == "dm"
                and not r.get("variant")
                and all(r.get(k) == pooled.get(k) for k in same)
            ):
                return r
    return None


def main() -> None:
    rows = sorted(
        (r for r in load_rows(RESULTS / "pool_fmnist.json") if r["variant"].startswith("pool")),
        key=lambda r: int(r["variant"][4:]),
    )
    sizes = [int(r["variant"][4:]) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(sizes, [100 * r["acc_mean"] for r in rows], [100 * r["acc_std"] for r in rows],
                marker="o", capsize=4, label="pooled embedders")  # fmt: skip
    fresh = fresh_row(rows[0])
    if fresh is not None:
        mean, std = 100 * fresh["acc_mean"], 100 * fresh["acc_std"]
        ax.axhspan(mean - std, mean + std, color="grey", alpha=0.25, label="fresh networks (± std)")
        ax.axhline(mean, color="grey")
    first = rows[0]
    ax.set(
        xscale="log",
        xlabel="pool size (members)",
        ylabel="test accuracy (%)",
        title=f"DM, {first['dataset']} IPC {first['ipc']}, {first['iterations']} it, "
        f"seed {first['seed']}",
    )
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.legend(loc="lower right")
    save(fig, RESULTS / "pool_size_fmnist.png")
    for r in rows:
        print(f"pool {r['variant'][4:]:>5}: {100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f}")
    if fresh is not None:
        print(f"fresh     : {100 * fresh['acc_mean']:.2f} ± {100 * fresh['acc_std']:.2f}")


if __name__ == "__main__":
    main()
