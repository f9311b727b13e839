"""What every non-image `distill run` shares: run options, the run folder, run counters.

Recommender and text presets own their `distill run` (`Method.runner`); this keeps the
translation of the parsed arguments into typed options in one place, at the edge.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from datadistill.distill import RunOptions


def options(args) -> RunOptions:
    return RunOptions(
        seed=args.seed,
        iterations=args.iterations,
        resume=args.resume,
        time_limit=args.time_limit,
        checkpoint_every=args.checkpoint_every,
        progress=not args.quiet,
    )


def out_dir(args, method: str, dataset: str, size: str) -> Path:
    safe = dataset.replace(":", "-").replace("/", "-")
    return args.out or Path("runs") / f"{method}-{safe}-{size}-s{args.seed}"


def run_info(state: dict) -> dict:
    """The outer loop's counters (`datadistill.loop`), as image summaries record them."""
    n = max(state["iteration"], 1)
    return {
        "iterations": state["iteration"],
        "sec_per_iter": state["step_seconds"] / n,
        "seconds": state["step_seconds"],
        "peak_mem_mb": state["peak_mem_mb"],
    }


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
