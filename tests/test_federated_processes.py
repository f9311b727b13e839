"""Processes a Flower run leaves behind are found and stopped, others are left alone."""

import subprocess
import sys
import time

import psutil

from datadistill_apps.federated.processes import Watch, reap

SLEEP = "import time; time.sleep(120)"
# a stand-in raylet: starts a Ray-titled worker at once and an agent 2 s later, then exits,
# orphaning both (their environments carry no tag: only the watch can know them)
RAYLET = (
    "import subprocess, sys, time\n"
    "def start(title):\n"
    f"    p = subprocess.Popen([sys.executable, '-c', {SLEEP!r}, title])\n"
    "    print(p.pid, flush=True)\n"
    "start('ray::IDLE'); time.sleep(2); start('ray::DashboardAgent'); time.sleep(1)\n"
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_orphaned_ray_processes_are_stopped_even_one_started_late_and_a_bystander_is_not():
    bystander = subprocess.Popen([sys.executable, "-c", SLEEP, "ray::bystander"])
    try:
        with Watch(every=0.1) as watch:
            raylet = subprocess.Popen(
                [sys.executable, "-c", RAYLET, "ray::raylet"], stdout=subprocess.PIPE, text=True
            )
            worker = int(raylet.stdout.readline())
            started = time.monotonic()
            reap(watch, tag="no-such-tag", grace=4.0)  # the agent starts during the wait
            agent = int(raylet.stdout.readline())
        assert _gone(worker) and _gone(agent)
        assert bystander.poll() is None  # alive before the watch opened: not ours to stop
        assert time.monotonic() - started < 40
    finally:
        bystander.kill()
        bystander.wait()
