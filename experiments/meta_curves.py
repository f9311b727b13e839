"""RFAD and FRePO against DSA on Fashion-MNIST: accuracy and loss against iterations (issue 5).

Reads what the runs committed, reruns nothing: every result row of `meta_fmnist.json` for
RFAD and FRePO (one row per iteration budget: `experiments/cells.py --name meta_fmnist
--iterations N` resumes a cell from its checkpoint and adds a row) and each run's training
loss (`meta_fmnist/<cell>/metrics.jsonl`). DSA's and random's rows at the same IPC are drawn
as horizontal lines: the question is whether the curve is still rising when it meets them.

    python experiments/meta_curves.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from datadistill.loop import run_metrics
from datadistill.plots import save
from datadistill.results import load_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
OUT = RESULTS / "meta_curves_fmnist.png"
# (method, variant): colour. FRePO's first runs stepped the summary with SGD (variant
# sgd-1, as the other families do); its default is now Adam, as FRePO's own LAMB.
METHODS = {("rfad", None): "tab:blue", ("frepo", "sgd-1"): "tab:red", ("frepo", None): "tab:orange"}
REFERENCES = {("dsa", "gradient_fmnist.json"): "--", ("random", "engine_fmnist.json"): ":"}


def label(method: str, variant: str | None) -> str:
    return f"{method} ({variant})" if variant else method


def curve(rows: list[dict], method, ipc: int) -> list[tuple[int, float, float, str]]:
    """(iterations, mean %, std %, device) of (method, variant) at `ipc`, ConvNet, sorted."""
    points = {
        r["iterations"]: (100 * r["acc_mean"], 100 * r["acc_std"], r.get("device", "?"))
        for r in rows
        if (r["method"], r.get("variant")) == method and r["ipc"] == ipc and r["arch"] == "convnet"
    }
    return [(it, *points[it]) for it in sorted(points)]


def losses(method, ipc: int) -> tuple[list[int], list[float]]:
    name, variant = method
    folder = f"{name}-fashion-mnist-ipc{ipc}-s0" + (f"-{variant}" if variant else "")
    recs = run_metrics(RESULTS / "meta_fmnist" / folder)
    return [r["iteration"] for r in recs], [r["loss"] for r in recs]


def best(rows: list[dict], method: str, ipc: int) -> float | None:
    accs = [
        r["acc_mean"]
        for r in rows
        if (r["method"], r["ipc"], r["arch"]) == (method, ipc, "convnet")
    ]
    return 100 * max(accs) if accs else None


def main() -> None:
    rows = load_rows(RESULTS / "meta_fmnist.json")
    refs = {name: load_rows(RESULTS / file) for name, file in REFERENCES}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for col, ipc in enumerate((1, 10)):
        ax, lax = axes[0][col], axes[1][col]
        for method, colour in METHODS.items():
            pts = curve(rows, method, ipc)
            if pts:
                its, mean, std, _ = zip(*pts, strict=True)
                ax.errorbar(its, mean, yerr=std, marker="o", color=colour, label=label(*method),
                            capsize=3)  # fmt: skip
                for it, m, _, device in pts:
                    ax.annotate(device.split(" ")[0], (it, m), fontsize=7, xytext=(3, -10),
                                textcoords="offset points")  # fmt: skip
            its, loss = losses(method, ipc)
            if its:
                lax.plot(its, loss, color=colour, label=label(*method), lw=0.8)
        for (name, _), style in REFERENCES.items():
            acc = best(refs[name], name, ipc)
            if acc is not None:
                ax.axhline(acc, ls=style, color="grey", label=f"{name} ({acc:.1f})")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
        ax.set_title(f"Fashion-MNIST IPC {ipc}: ConvNet accuracy (300 ep, DSA, 5 runs)")
        ax.set_xlabel("distillation iterations (log)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=8)
        lax.set_xscale("log")
        lax.set_yscale("log")
        lax.set_title(f"IPC {ipc}: training loss of the committed runs")
        lax.set_xlabel("iteration (log)")
        lax.set_ylabel("loss (log)")
        lax.legend(fontsize=8)
    save(fig, OUT)
    print(f"wrote {OUT}")
    for method in METHODS:
        for ipc in (1, 10):
            for it, m, s, device in curve(rows, method, ipc):
                print(
                    f"{label(*method):14s} ipc {ipc:2d} {it:6d} it  {m:.2f} +- {s:.2f}  ({device})"
                )


if __name__ == "__main__":
    main()
