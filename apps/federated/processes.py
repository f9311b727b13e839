"""Find and stop the processes a Flower run leaves behind.

Ray's workers outlive `ray.shutdown()` on a busy machine, and once their raylet is gone they
are orphans: neither our children nor reliably tagged (Ray's process titles can overwrite a
worker's environment, so `/proc/<pid>/environ` reads empty). A `Watch` therefore records every
descendant while the run is alive, and `reap` stops those plus any still carrying the tag.
"""

from __future__ import annotations

import os
import re
import threading
import time

import psutil

TAG = "DATADISTILL_SIMULATION"  # environment variable naming one simulation's processes
RAY = re.compile(r"(^|[/\s])ray(::|/)")  # a Ray title ("ray::IDLE") or a file in Ray's package


class Watch:
    """Record the Ray processes among this process's descendants, every `every` seconds while
    the context is open (those alive before it opened, e.g. a compile pool, are left alone)."""

    def __init__(self, every: float = 0.25):
        self.every, self.seen = every, {}
        self._lock = threading.Lock()
        self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._look()

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self._look()

    def _look(self) -> None:
        try:
            for p in psutil.Process().children(recursive=True):
                if p.pid not in self._before and p.pid not in self.seen and is_ray(p):
                    with self._lock:
                        self.seen[p.pid] = p  # a psutil.Process notices a reused pid
        except psutil.Error:
            pass

    def alive(self) -> list[psutil.Process]:
        with self._lock:
            seen = list(self.seen.values())
        return [p for p in seen if _running(p)]


def tagged(tag: str) -> list[psutil.Process]:
    """Live Ray processes (workers, raylet, GCS) whose environment carries `tag`."""
    out = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            if p.pid == os.getpid() or not _running(p):
                continue
            if (p.info["environ"] or {}).get(TAG) == tag and is_ray(p):
                out.append(p)
        except psutil.Error:
            pass
    return out


def reap(watch: Watch, tag: str, patience: float = 60.0, grace: float = 20.0) -> None:
    """Wait for a run's processes to exit, stopping any that linger, until two looks a second
    apart find none: a raylet shutting down can still start one (its dashboard agent) after a
    look, on a busy machine, so call it while `watch` is still open. After `patience` seconds
    the survivors are killed at once, and after twice that the looking stops."""
    deadline = time.monotonic() + patience
    empty = 0
    while empty < 2 and time.monotonic() < deadline + patience:
        procs = {p.pid: p for p in [*watch.alive(), *tagged(tag)]}
        empty = 0 if procs else empty + 1
        late = time.monotonic() > deadline
        kill_lingering(list(procs.values()), grace=0.0 if late else grace)
        time.sleep(1.0)


def kill_lingering(procs: list[psutil.Process], *, grace: float) -> None:
    """Give `procs` `grace` seconds to exit, then kill those still alive."""
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def is_ray(p: psutil.Process) -> bool:
    """Whether `p`'s command line names Ray (a `ray::` title or a file in Ray's package)."""
    try:
        return bool(RAY.search(" ".join(p.cmdline())))
    except psutil.Error:
        return False
