"""Processes a Flower run leaves behind are found and stopped, others are left alone."""

import subprocess
import sys
import time

import psutil

from datadistill_apps.federated.processes import Watch, reap

SLEEP = "import time; time.sleep(120)"


def test_an_orphaned_ray_worker_seen_during_the_run_is_stopped_and_a_bystander_is_not():
    bystander = subprocess.Popen([sys.executable, "-c", SLEEP, "ray::bystander"])
    # a parent that starts a Ray-titled worker, then exits: the worker is orphaned, untagged
    spawn = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {SLEEP!r}, 'ray::IDLE']); "
        "print(p.pid, flush=True); time.sleep(1.5)"
    )
    try:
        with Watch(every=0.1) as watch:
            parent = subprocess.Popen(
                [sys.executable, "-c", spawn], stdout=subprocess.PIPE, text=True
            )
            orphan = psutil.Process(int(parent.stdout.readline()))
            parent.wait(timeout=30)
        assert orphan.is_running() and orphan.pid not in {
            c.pid for c in psutil.Process().children()
        }
        started = time.monotonic()
        reap(watch, tag="no-such-tag", grace=1.0)
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None  # alive before the watch opened: not ours to stop
        assert time.monotonic() - started < 30
    finally:
        bystander.kill()
        bystander.wait()
