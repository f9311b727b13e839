"""Issue 37.3: DM at its published budget, accuracy against iterations, one panel per IPC.

Reads experiments/results/dm_budget.json (pool 200; the 5,000 and 10,000 rows evaluate
copies of the 20,000-iteration run's checkpoints) and draws one line per evaluation budget
(the quick protocol's 300 epochs, DM's reference 1,000), mean +- std over the 5 runs, with
the issue's targets dashed. Writes experiments/results/dm_budget_iterations.png.

    python experiments/dm_budget_plot.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.plots import save
from datadistill.results import load_rows

RESULTS = Path("experiments/results/dm_budget.json")
TARGETS = {10: 84.0, 50: 87.0}  # issue 37, acceptance 3


def main() -> None:
    rows = [r for r in load_rows(RESULTS) if r["method"] == "dm"]
    ipcs = sorted({r["ipc"] for r in rows})
    fig, axes = plt.subplots(1, len(ipcs), figsize=(4.5 * len(ipcs), 3.8), squeeze=False)
    for ax, ipc in zip(axes[0], ipcs, strict=True):
        for epochs in sorted({r["eval_epochs"] for r in rows if r["ipc"] == ipc}):
            line = sorted(
                (r for r in rows if r["ipc"] == ipc and r["eval_epochs"] == epochs),
                key=lambda r: r["iterations"],
            )
            ax.errorbar(
                [r["iterations"] for r in line],
                [100 * r["acc_mean"] for r in line],
                yerr=[100 * r["acc_std"] for r in line],
                marker="o",
                capsize=3,
                label=f"evaluated {epochs} epochs",
            )
        if ipc in TARGETS:
            ax.axhline(TARGETS[ipc], color="grey", ls="--", lw=1, label="target")
        ax.set_xscale("log")
        ax.set_xlabel("DM iterations (pool 200)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Fashion-MNIST, IPC {ipc}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    print(f"wrote {save(fig, RESULTS.with_name('dm_budget_iterations.png'))}")


if __name__ == "__main__":
    main()
