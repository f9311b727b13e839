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

from datadistill.errors import DistillError


def enabled() -> bool:
    return os.environ.get("DATADISTILL_COMPILE", "1") not in ("0", "false", "no", "")


def compile_module(net: torch.nn.Module) -> torch.nn.Module:
    """`net` compiled for fixed shapes when enabled, else `net` itself (same parameters)."""
    return torch.compile(net, dynamic=False) if enabled() else net


def compile_fn(fn):
    return torch.compile(fn, dynamic=False) if enabled() else fn


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 convolutions beat float32 ones here: a CPU with bfloat16 units, compiled.

    On the 2-core Sapphire Rapids VM of 2026-11-28 (AMX) a compiled ConvNet embeds 2,560
    Fashion-MNIST images 3.2x faster in bfloat16; eager bfloat16 is 3.6x *slower* (its
    GroupNorm kernel). On the 2-core AMD EPYC VM of 2026-11-29 (AVX512-BF16, no AMX)
    gradient matching with its real side compiled in bfloat16 stepped 1.31-1.35x as fast as
    the plain float32 loop (experiments/results/method_speed.json; compiling counts in that
    too). CPUs without either and GPUs keep float32 (not measured).
    """
    if device.type != "cpu" or not enabled():
        return False
    for unit in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        supported = getattr(torch.cpu, unit, None)
        if supported is not None and supported():
            return True
    return False


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "auto": None}
PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16"}


def check_precision(setting: str, precision: str) -> str:
    """`precision` if it is one of PRECISIONS, else a DistillError naming `setting`."""
    if precision not in PRECISIONS:
        raise DistillError(f"unknown {setting} '{precision}'; use one of: " + ", ".join(PRECISIONS))
    return precision


def precision_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype a real-side `precision` ("fp32", "bf16", "auto") means on `device`."""
    if precision == "auto":
        return torch.bfloat16 if fast_bf16(device) else torch.float32
    return PRECISIONS[precision]


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned: list[bool] = []


def trim_memory() -> None:
    """Hand the allocator's free memory back to the OS (glibc's malloc_trim; else a no-op).

    After tune_allocator() freed blocks stay in the process, so a block measured later
    reuses them and its resident-memory peak reads near zero; trimming first makes the
    next block fault its memory in again, and its peak says what it needs.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tune_allocator() -> None:
    """Keep large CPU tensors' memory in the process instead of returning it to the OS.

    glibc serves allocations above 128 KiB with fresh mmap'd pages and unmaps them on free,
    so every activation of a large batch costs a page fault per 4 KiB, every step. On this
    project's reference VM that made a DM step on Fashion-MNIST about 3x slower
    (experiments/results/engine_speed.json). Raising the mmap and trim thresholds lets
    freed blocks be reused. Idempotent; a no-op off glibc or with DATADISTILL_MALLOC=0.
    """
    if _tuned or os.environ.get("DATADISTILL_MALLOC", "1") in ("0", "false", "no"):
        return
    _tuned.append(True)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    except (OSError, AttributeError):
        pass
