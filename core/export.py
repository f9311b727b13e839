"""Export a summary for tools that do not read safetensors: .npz, .pt, or a folder of PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datadistill.errors import DistillError
from datadistill.summary import Summary


def export(summary: Summary, path: str | Path, *, fmt: str) -> Path:
    """Write images (normalised, as stored), labels and the spec's mean/std in format `fmt`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mean, std = np.array(summary.spec.mean), np.array(summary.spec.std)
    if fmt == "npz":
        path = path.with_name(path.name.removesuffix(".npz") + ".npz")  # what np.savez writes
        np.savez(
            path, images=summary.images.numpy(), labels=summary.labels.numpy(), mean=mean, std=std
        )
    elif fmt == "pt":
        torch.save(
            {"images": summary.images, "labels": summary.labels, "metadata": summary.metadata()},
            path,
        )
    elif fmt == "png":
        from matplotlib.image import imsave

        from datadistill.plots import to_pixels

        path.mkdir(parents=True, exist_ok=True)
        labels = summary.hard_labels()
        for i, img in enumerate(to_pixels(summary).numpy()):
            img = img.squeeze(-1) if img.shape[-1] == 1 else img
            imsave(path / f"{i:05d}_class{int(labels[i])}.png", img, cmap="gray", vmin=0, vmax=1)
    else:
        raise DistillError(f"unknown export format '{fmt}'; use npz, pt or png")
    return path
