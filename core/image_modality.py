"""Images in the modality registry: `datadistill.evaluate`'s protocol, a grid of the images, and
.npz/.pt/PNG export. The defaults are the quick protocol's (ConvNet, 5 runs, 300 epochs,
DSA), as `distill eval` has always used."""

from __future__ import annotations

from pathlib import Path

from datadistill.errors import DistillError
from datadistill.modality import (
    EVAL_FLAGS,
    SHOW_FLAGS,
    EvalRequest,
    Modality,
    ShowRequest,
    describe,
    register,
)
from datadistill.summary import Summary

ARCHS = ("convnet",)
RUNS = 5
EPOCHS = 300  # the quick protocol; 1000 as published
MAX_PER_CLASS = 10


def evaluate_images(summary: Summary, request: EvalRequest) -> list[dict]:
    from datadistill import data as datasets
    from datadistill import nets
    from datadistill.evaluate import EvalConfig, evaluate
    from datadistill.train import TrainConfig

    archs = request.archs or ARCHS
    for a in archs:
        if a not in nets.available():
            raise DistillError(
                f"unknown architecture '{a}'; choose from: {', '.join(nets.available())}"
            )
    data = datasets.load(
        request.dataset or summary.spec.name, root=request.data_root, download=request.download
    )
    train = TrainConfig(epochs=request.epochs or EPOCHS, dsa=not request.no_dsa)
    config = EvalConfig(archs=archs, runs=request.runs or RUNS, seed=request.seed or 0, train=train)
    return evaluate(summary, data, config=config, device=request.device, progress=request.progress)


def show_images(summary: Summary, path: Path, request: ShowRequest) -> list[str]:
    """Draw the class x example grid (next to the summary unless -o says where)."""
    from datadistill.plots import summary_grid

    out = request.output or path.with_suffix(".png")
    summary_grid(summary, out, max_per_class=request.max_per_class or MAX_PER_CLASS)
    return [*describe(summary), f"wrote {out}"]


def export_images(summary: Summary, path: Path, fmt: str) -> Path:
    from datadistill.export import export

    return export(summary, path, fmt=fmt)


register(
    Modality(
        "image",
        load=Summary.load,
        evaluate=evaluate_images,
        show=show_images,
        export=export_images,
        eval_options=frozenset(EVAL_FLAGS),  # every option was made for images
        show_options=frozenset(SHOW_FLAGS),
        export_formats=("npz", "pt", "png"),
    )
)
