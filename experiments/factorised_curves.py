"""Why a factorised summary trails DM at the same bytes: DM's loss per iteration (issue 6).

DM, KFS and HaBa-DM optimise one loss (DM's mean-embedding distance, computed on the images
each summary produces), so their curves share a scale. Read from the committed runs'
metrics (experiments/results/factorised_fmnist/*/metrics.jsonl) and the accuracy of each in
factorised_fmnist.json; nothing is rerun.

    python experiments/factorised_curves.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from core.loop import run_metrics
from core.plots import running_mean, save
from core.results import load_rows

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "factorised_fmnist"
OUT = RESULTS / "factorised_curves_fmnist.png"
METHODS = (("dm", "tab:blue"), ("kfs", "tab:green"), ("haba-dm", "tab:red"))


def accuracy(rows: list[dict], method: str, ipc: int) -> str:
    hits = [r for r in rows if (r["method"], r["ipc"], r["arch"]) == (method, ipc, "convnet")]
    return f"{100 * hits[0]['acc_mean']:.2f}%" if hits else "not evaluated"


def main() -> None:
    rows = load_rows(RESULTS / "factorised_fmnist.json")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, ipc in zip(axes, (1, 10), strict=True):
        for method, colour in METHODS:
            m = run_metrics(RUNS / f"{method}-fashion-mnist-ipc{ipc}-s0")
            if not m:
                continue
            loss = [r["loss"] for r in m]
            label = f"{method} ({accuracy(rows, method, ipc)})"
            ax.plot([r["iteration"] for r in m], running_mean(loss), color=colour, label=label)
            print(
                f"IPC {ipc:2d} {method:8s} {len(m):3d} iterations: loss at 1 {loss[0]:8.1f}, "
                f"peak {max(loss):8.1f} (iteration {loss.index(max(loss)) + 1}), "
                f"mean of last 10 {sum(loss[-10:]) / len(loss[-10:]):7.1f}"
            )
        ax.set(
            title=f"Fashion-MNIST, IPC-{ipc} byte budget",
            xlabel="outer iteration",
            ylabel="DM loss (running mean of 5)",
            yscale="log",
        )
        ax.grid(alpha=0.3)
        ax.legend(title="method (test accuracy)", fontsize=8)
    print(f"wrote {save(fig, OUT)}")


if __name__ == "__main__":
    main()
