"""MTT against TESLA on Fashion-MNIST: matching loss per iteration and per second (issue 4).

Both optimise the same loss with the same image gradient (tests/test_trajectory.py checks it
to 1e-4), so their loss curves per iteration should overlap; what differs is the price of an
iteration. Read from the committed runs' metrics (experiments/results/trajectory_fmnist/*/
metrics.jsonl), nothing is rerun. Where each pair ran (IPC 1: the 2-core CPU, MTT and TESLA
at once; IPC 10: one H200 shared by the GPU batch of experiments/gpu_batch.sh) is in WHERE.

    python experiments/trajectory_curves.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.loop import run_metrics
from datadistill.plots import running_mean, save

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "experiments" / "results" / "trajectory_fmnist"
OUT = ROOT / "experiments" / "results" / "trajectory_curves_fmnist.png"
WHERE = {1: "the same 2-core CPU", 10: "the same shared GPU"}  # both of a pair ran side by side


def metrics(method: str, ipc: int) -> list[dict]:
    return run_metrics(RUNS / f"{method}-fashion-mnist-ipc{ipc}-s0")


def main() -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for row, ipc in enumerate((1, 10)):
        for method, colour in (("mtt", "tab:blue"), ("tesla", "tab:orange")):
            m = metrics(method, ipc)
            its = [r["iteration"] for r in m]
            loss = running_mean([r["loss"] for r in m])
            secs, total = [], 0.0
            for r in m:
                total += r["sec"]
                secs.append(total)
            per = total / len(m)
            label = f"{method} ({len(m)} iterations, {per:.1f} s each)"
            axes[row, 0].plot(its, loss, color=colour, label=label)
            axes[row, 1].plot(secs, loss, color=colour, label=label)
            print(
                f"IPC {ipc:2d} {method:5s} {len(m):4d} iterations {per:5.2f} s/iter "
                f"final loss (mean of last 5) {loss[-1]:.3f}"
            )
        axes[row, 0].set(
            title=f"IPC {ipc}: loss per iteration",
            xlabel="outer iteration",
            ylabel="trajectory matching loss (5-iteration mean)",
        )
        axes[row, 1].set(
            title=f"IPC {ipc}: loss against wall time ({WHERE[ipc]})",
            xlabel="seconds of distillation",
            ylabel="trajectory matching loss",
        )
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend()
    fig.suptitle(
        "Fashion-MNIST, ConvNet: MTT and TESLA optimise the same loss; TESLA's iteration costs more"
    )
    fig.tight_layout()
    save(fig, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
