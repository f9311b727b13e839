"""Measuring time and peak memory of a block, on CPU and GPU alike.

On a GPU, peak memory is CUDA's own high-water mark. On a CPU the kernel's high-water mark
of the resident set (VmHWM) is reset at entry where Linux allows it, and a background thread
also samples the resident set every few milliseconds (the fallback); the reported figure is
the peak above the level at entry, i.e. what the block itself needed. An allocator that
keeps freed memory (datadistill.accel.tune_allocator) makes later blocks reuse it: their figure
is then only what they needed beyond that.
"""

from __future__ import annotations

import functools
import platform
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

_PAGE = 4096


@functools.cache  # every evaluated row asks; the answer does not change within a process
def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's word for it: CPU timings are only
    comparable on the same model."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's resident memory (Linux 4.0+).

    Without it the only peak on offer is the lifetime one (getrusage), which a data load
    long before the block dominates.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The high-water mark of resident memory since the last reset (VmHWM; 0 if unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Measure:
    seconds: float = 0.0
    # this process's CPU time, all its threads but the memory sampler (whose share grows
    # with wall time): what other work sharing the cores does not move. Helper processes
    # (torch.compile's C++ compiler pool) are not counted
    cpu_seconds: float = 0.0
    peak_mem_mb: float = 0.0


@contextmanager
def measure(device: torch.device | str = "cpu", interval: float = 0.005):
    """`with measure(dev) as m: ...` then read m.seconds and m.peak_mem_mb."""
    m = Measure()
    dev = torch.device(device)
    stop = threading.Event()
    hwm = reset_peak_rss()  # the kernel's exact high-water mark; sampling is the fallback
    base = rss_bytes()
    peak = [base]

    sampler_cpu = [0.0]

    def sample():
        started = time.thread_time()
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_bytes(), peak_rss_bytes() if hwm else 0)
        sampler_cpu[0] = time.thread_time() - started

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        cuda_base = torch.cuda.memory_allocated(dev)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        yield m
    finally:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        m.seconds = time.perf_counter() - start
        stop.set()
        thread.join()
        m.cpu_seconds = time.process_time() - cpu_start - sampler_cpu[0]
        peak[0] = max(peak[0], rss_bytes(), peak_rss_bytes() if hwm else 0)
        if dev.type == "cuda":
            m.peak_mem_mb = (torch.cuda.max_memory_allocated(dev) - cuda_base) / 2**20
        else:
            m.peak_mem_mb = (peak[0] - base) / 2**20


class _Box(list):
    """Holds one saved tensor; weak-referenceable, so its release can be observed."""


def peak_saved_bytes(fn) -> int:
    """Peak bytes of the tensors autograd keeps for backward while `fn()` runs, alive at once.

    Every saved tensor is packed in a box whose finaliser runs when autograd releases it (its
    graph is freed): a deterministic, allocator-independent measure of the memory an unrolled
    graph holds (MTT's grows with its unrolled steps, TESLA's should not). Run the backward
    inside `fn`.
    """
    state = {"live": 0, "peak": 0}

    def free(n: int) -> None:
        state["live"] -= n

    def pack(t: torch.Tensor):
        n = t.numel() * t.element_size()
        state["live"] += n
        state["peak"] = max(state["peak"], state["live"])
        box = _Box([t])
        weakref.finalize(box, free, n)
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box[0]):
        fn()
    return state["peak"]
