"""Pictures: a summary's images as a grid, one row per class."""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from datadistill import atomic  # noqa: E402
from datadistill.summary import Summary  # noqa: E402


def to_pixels(summary: Summary) -> torch.Tensor:
    """Images back in [0, 1] pixel space, [n, H, W, C]."""
    mean = torch.tensor(summary.spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(summary.spec.std).view(1, -1, 1, 1)
    return (summary.images * std + mean).clamp(0, 1).permute(0, 2, 3, 1)


def summary_grid(summary: Summary, path: str | Path, *, max_per_class: int = 10) -> Path:
    """Save a class x example grid of the summary's images as a PNG."""
    pixels = to_pixels(summary).numpy()
    labels = summary.hard_labels()
    k = summary.spec.num_classes
    rows = [torch.nonzero(labels == c).flatten()[:max_per_class] for c in range(k)]
    cols = max(1, max(len(r) for r in rows))
    fig, axes = plt.subplots(k, cols, figsize=(cols * 0.8 + 0.6, k * 0.8 + 0.6), squeeze=False)
    cmap = "gray" if summary.spec.channels == 1 else None
    for c, ix in enumerate(rows):
        for j in range(cols):
            ax = axes[c][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j < len(ix):
                img = pixels[ix[j]]
                ax.imshow(
                    img.squeeze(-1) if summary.spec.channels == 1 else img,
                    cmap=cmap,
                    vmin=0,
                    vmax=1,
                )
        axes[c][0].set_ylabel(str(c), rotation=0, labelpad=10, va="center")
    fig.suptitle(
        f"{summary.method} on {summary.spec.name}, IPC {summary.ipc} "
        f"({summary.n} images, {summary.stored_bytes} bytes)",
        fontsize=9,
    )
    return save(fig, path, dpi=100)


def accuracy_curves(rows: list[dict], path: str | Path, *, title: str) -> Path:
    """Two panels: accuracy against images per class, and against stored bytes (log x)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in sorted({r["method"] for r in rows}):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["ipc"])
        acc = [100 * r["acc_mean"] for r in rs]
        err = [100 * r["acc_std"] for r in rs]
        axes[0].errorbar([r["ipc"] for r in rs], acc, yerr=err, marker="o", capsize=3, label=method)
        axes[1].errorbar(
            [r["stored_bytes"] / 1024 for r in rs],
            acc,
            yerr=err,
            marker="o",
            capsize=3,
            label=method,
        )
    for ax, xlabel in zip(axes, ("images per class (IPC)", "stored bytes (KiB)"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    return save(fig, path)


def variant_bars(rows: list[dict], path: str | Path, *, title: str, ylabel: str) -> Path:
    """One bar per (method, IPC, variant), mean +- std: a hyperparameter search at a glance."""
    rows = sorted(rows, key=lambda r: (r["method"], r["ipc"], -r["acc_mean"]))
    names = [re.sub(r"^val\d+-?", "", r.get("variant") or "") or "default" for r in rows]
    labels = [f"{r['method']} ipc{r['ipc']}\n{name}" for r, name in zip(rows, names, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1), 4))
    ax.bar(range(len(rows)), [100 * r["acc_mean"] for r in rows],
           yerr=[100 * r["acc_std"] for r in rows], capsize=3, color="tab:blue")  # fmt: skip
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    low = min(100 * (r["acc_mean"] - r["acc_std"]) for r in rows)
    ax.set_ylim(max(0.0, low - 5), None)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)


def save(fig, path: str | Path, *, dpi: int = 110) -> Path:
    """Lay out, write atomically (creating folders) and close a figure.

    Atomic because parallel experiment processes redraw the same plot of a results file.
    """
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return atomic.write_bytes(path, buffer.getvalue())


def running_mean(values: list[float], k: int = 5) -> list[float]:
    """Mean of the last k values at each point: loss curves of single draws are noisy."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out
