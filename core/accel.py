"""Optional torch.compile, the one place that decides whether to use it.

On this project's reference CPU (2 cores, AVX2) the ConvNet spends about 40% of its time
in memory-bound GroupNorm, ReLU and pooling; compiling fuses them and measured 1.5x faster
training and 1.7x faster forward passes (experiments/results/engine_speed.json). The
first compilation costs ~30 s per process (cached on disk afterwards), so short jobs and
the unit tests turn it off with DATADISTILL_COMPILE=0.
"""

from __future__ import annotations

import os

import torch


def enabled() -> bool:
    return os.environ.get("DATADISTILL_COMPILE", "1") not in ("0", "false", "no", "")


def compile_module(net: torch.nn.Module) -> torch.nn.Module:
    """`net` compiled for fixed shapes when enabled, else `net` itself (same parameters)."""
    return torch.compile(net, dynamic=False) if enabled() else net


def compile_fn(fn):
    return torch.compile(fn, dynamic=False) if enabled() else fn
