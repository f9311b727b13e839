"""Why a factorised summary trails DM at the same bytes: its loss per iteration (issue 6).

Top row: DM, KFS and HaBa-DM optimise one loss (DM's mean-embedding distance, computed on
the images each summary produces), so their curves share a scale; dashed, KFS and HaBa-DM
at their former decoder / hallucinator rate 0.1, whose pixels ran away (variants). Bottom
row: the methods with their own objective, one panel each, both byte budgets: LinBa (BPTT's
cross-entropy after the unroll) and HaBa (trajectory matching's normalised distance). Read
from the committed runs' metrics (experiments/results/factorised_fmnist/*/metrics.jsonl) and the
accuracy of each in factorised_fmnist.json; nothing is rerun.

    python experiments/factorised_curves.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.loop import run_metrics
from datadistill.plots import running_mean, save
from datadistill.results import load_rows

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "factorised_fmnist"
OUT = RESULTS / "factorised_curves_fmnist.png"
SHARED_LOSS = (("dm", "tab:blue"), ("kfs", "tab:green"), ("haba-dm", "tab:red"))
OWN_LOSS = (("linba", "BPTT loss (cross-entropy after the unroll)"),
            ("haba", "trajectory-matching loss (normalised)"))  # fmt: skip
BUDGET_COLOURS = {1: "tab:purple", 10: "tab:orange"}
FORMER = {"kfs": "lr-decoder-0.1", "haba-dm": "lr-halluc-0.1"}  # variants: the old rates


def accuracy(rows: list[dict], method: str, ipc: int, variant: str | None = None) -> str:
    hits = [r for r in rows if (r["method"], r["ipc"], r["arch"]) == (method, ipc, "convnet")]
    hits = [r for r in hits if r.get("variant") == variant]
    return f"{100 * hits[-1]['acc_mean']:.2f}%" if hits else "not evaluated"


def curve(ax, rows, method: str, ipc: int, colour: str, label: str, variant=None) -> None:
    m = run_metrics(RUNS / f"{method}-fashion-mnist-ipc{ipc}-s0{'-' + variant if variant else ''}")
    if not m:
        return
    loss = [r["loss"] for r in m]
    ax.plot([r["iteration"] for r in m], running_mean(loss), color=colour,
            linestyle="--" if variant else "-",
            label=f"{label} ({accuracy(rows, method, ipc, variant)}, {len(m)} it.)")  # fmt: skip
    print(
        f"IPC {ipc:2d} {method + (' ' + variant if variant else ''):22s} {len(m):3d} "
        f"iterations: loss at 1 {loss[0]:8.3f}, "
        f"peak {max(loss):8.3f} (iteration {loss.index(max(loss)) + 1}), "
        f"mean of last 10 {sum(loss[-10:]) / len(loss[-10:]):7.3f}"
    )


def main() -> None:
    rows = load_rows(RESULTS / "factorised_fmnist.json")
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, ipc in zip(axes[0], (1, 10), strict=True):
        for method, colour in SHARED_LOSS:
            curve(ax, rows, method, ipc, colour, method)
            if method in FORMER:
                curve(ax, rows, method, ipc, colour, f"{method}, rate 0.1", FORMER[method])
        ax.set(title=f"Fashion-MNIST, IPC-{ipc} byte budget: DM's loss on each summary",
               ylabel="DM loss (running mean of 5)", yscale="log")  # fmt: skip
    for ax, (method, ylabel) in zip(axes[1], OWN_LOSS, strict=True):
        for ipc, colour in BUDGET_COLOURS.items():
            curve(ax, rows, method, ipc, colour, f"IPC-{ipc} bytes")
        dm = ", ".join(f"IPC {i}: {accuracy(rows, 'dm', i)}" for i in BUDGET_COLOURS)
        ax.set(title=f"{method}: its own loss (DM at the same bytes: {dm})",
               ylabel=f"{ylabel}, running mean of 5")  # fmt: skip
    for ax in axes.flat:
        ax.set_xlabel("outer iteration")
        ax.grid(alpha=0.3)
        ax.legend(title="summary (test accuracy, iterations)", fontsize=8, title_fontsize=8)
        ax.title.set_fontsize(9)
    print(f"wrote {save(fig, OUT)}")


if __name__ == "__main__":
    main()
