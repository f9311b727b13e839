"""DSA's siamese draw, batch mode against per-example: accuracy against iterations.

The reference code (DC/DSA's `utils.py`, reused by DM) gives a class's whole real and
synthetic batches one transformation per matching step; this library drew one per example
pair until 2026-11-28 (`datadistill.augment`). Reads the rows the A/B cells wrote, reruns nothing:
`siamese_fmnist.json` (`experiments/cells.py --name siamese_fmnist --variant siamese-MODE
--set siamese=MODE`, one row per iteration budget, each resuming the last) and, for DM's
per-example side, `engine_precision.json`'s bf16-targets row (the same settings, run with the
per-example draws before the change), and `dcc_fmnist.json`: the DSA batch run continued
to 500 iterations and DCC branched from it at 232 (DCC is DSA until its 250th network).
DM's seed-1 run of `engine_fmnist.json` (batch draws, 2,000 to 8,000 iterations) is the
longer green line. DSA at IPC 10: `gradient_fmnist.json`'s CPU curve (variant cpu-curve,
batch draws) and its H200 row (per-example draws). Random's row at the same IPC is the grey line.

    python experiments/siamese_curves.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from datadistill.plots import save
from datadistill.results import load_rows

RESULTS = Path(__file__).resolve().parent.parent / "experiments" / "results"
OUT = RESULTS / "siamese_curves_fmnist.png"
PANELS = (("dm", 10), ("dsa", 1), ("dsa", 10))
DCC = "DCC from 232 (batch)"  # DCC branched from the DSA batch run, in the DSA panel
# (results file, variant, seed or None for any) -> line label (its siamese mode)
SOURCES = {
    ("siamese_fmnist", "siamese-batch", None): "batch",
    ("siamese_fmnist", "siamese-example", None): "example",
    ("engine_precision", "bf16-targets", None): "example",
    # the engine's own seed-1 DM run, after the batch draw became the default
    ("engine_fmnist", None, 1): "batch, seed 1",
    # the DSA batch run continued to 500, and DCC branched from it at 232 (dcc_fmnist.json)
    ("dcc_fmnist", "from-dsa232", None): "batch",
    # DSA at IPC 10: this CPU's batch-draw curve, and the H200 row (per-example draws)
    ("gradient_fmnist", "cpu-curve", None): "batch",
    ("gradient_fmnist", None, None): "example",
}
STYLE = {
    "batch": "tab:green",
    "example": "tab:grey",
    "batch, seed 1": "darkgreen",
    DCC: "tab:purple",
}


def points(method: str, ipc: int) -> dict[str, list[tuple[int, float, float]]]:
    """line label -> sorted (iterations, mean %, std %) of `method` at `ipc`."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for (file, variant, seed), mode in SOURCES.items():
        for r in load_rows(RESULTS / f"{file}.json"):
            if (r["ipc"], r.get("variant")) != (ipc, variant):
                continue
            branched = file == "dcc_fmnist" and r["method"] == "dcc" and method == "dsa"
            label = mode if r["method"] == method else DCC if branched else None
            if label is None:
                continue
            if r.get("arch", "convnet") == "convnet" and seed in (None, r.get("seed")):
                out.setdefault(label, {})[r["iterations"]] = (
                    100 * r["acc_mean"],
                    100 * r["acc_std"],
                )
    return {mode: [(it, *pts[it]) for it in sorted(pts)] for mode, pts in out.items()}


def random_accuracy(ipc: int) -> float | None:
    accs = [
        100 * r["acc_mean"]
        for r in load_rows(RESULTS / "engine_fmnist.json")
        if (r["method"], r["ipc"], r["arch"]) == ("random", ipc, "convnet")
    ]
    return max(accs) if accs else None


def main() -> None:
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for ax, (method, ipc) in zip(axes, PANELS, strict=True):
        for mode, pts in sorted(points(method, ipc).items()):
            its, mean, std = zip(*pts, strict=True)
            ax.errorbar(its, mean, yerr=std, marker="o", capsize=3, color=STYLE[mode],
                        label=mode if mode == DCC else f"siamese={mode}")  # fmt: skip
            for it, m, s in pts:
                print(f"{method} ipc {ipc:2d} {mode:20s} {it:5d} it  {m:.2f} +- {s:.2f}")
        rand = random_accuracy(ipc)
        if rand is not None:
            ax.axhline(rand, ls=":", color="grey", label=f"random ({rand:.1f})")
        ax.set_title(f"{method.upper()}, Fashion-MNIST IPC {ipc} (300 ep, DSA, 5 runs)")
        ax.set_xlabel("distillation iterations")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
