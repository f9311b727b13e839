"""Fault paths, bounded to seconds so CI's default suite runs them (the slow marker is kept for
the long variants in test_federated_flower.py and test_sweep.py).

A process killed with SIGKILL gets no chance to clean up: what survives is whatever was
already on disk, which is exactly what resuming must cope with. Digits, a few iterations,
two clients or one worker each.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from datadistill import checkpoint
from datadistill.loop import CHECKPOINT_FILE
from datadistill.results import load_rows
from datadistill.summary import Summary

DISTILL = str(Path(sys.executable).parent / "distill")  # the console script a user runs
# one thread and no compilation: the same arithmetic in every process, so results compare
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DATADISTILL_COMPILE": "0"}


def _last_iteration(folder: Path) -> int:
    try:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    done = [json.loads(s)["iteration"] for s in lines if s.endswith("}")]  # skip a torn line
    return done[-1] if done else 0


def _kill_when(proc: subprocess.Popen, ready, *, timeout: float = 120) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fail if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "the process never reached the point to kill it"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


# --- a distillation run ---------------------------------------------------------------------


RUN = ["run", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--quiet"]
RUN += ["--iterations", "40", "--checkpoint-every", "10", "--set", "batch_real=16"]


def test_a_run_killed_between_checkpoints_resumes_to_the_uninterrupted_result(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run([DISTILL, *RUN, "--out", str(whole)], env=ENV, check=True, timeout=300)
    proc = subprocess.Popen([DISTILL, *RUN, "--out", str(cut)], env=ENV)
    # past the checkpoint at 10 and short of the next: the steps after it are lost
    _kill_when(proc, lambda: _last_iteration(cut) >= 13)
    assert not (cut / "summary.safetensors").exists()
    saved = checkpoint.load_state(cut / CHECKPOINT_FILE)["state"]["iteration"]
    assert saved % 10 == 0 and saved < _last_iteration(cut)  # work after it was lost
    subprocess.run([DISTILL, *RUN, "--out", str(cut), "--resume"], env=ENV, check=True,
                   timeout=300)  # fmt: skip
    a, b = (Summary.load(f / "summary.safetensors") for f in (whole, cut))
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # one metrics record per iteration: the lost steps' records were dropped, then redone
    records = [json.loads(s) for s in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(1, 41))


# --- a sweep -----------------------------------------------------------------------------------


def _sweep_config(tmp_path) -> Path:
    """random (instant) then dm (40 iterations), run one after the other in one process."""
    raw = {
        "name": "faults",
        "datasets": ["digits"],
        "methods": ["random", "dm"],
        "ipc": [1],
        "iterations": 40,
        "overrides": {"dm": {"batch_real": 16}},
        "eval": {"epochs": 1, "runs": 1},
        "results": str(tmp_path / "{name}_{dataset}.json"),
        "runs": str(tmp_path / "runs" / "{dataset}"),
        "device": "cpu",
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_sweep_killed_mid_cell_loses_no_finished_cell_and_runs_none_twice(tmp_path):
    config = _sweep_config(tmp_path)
    results = tmp_path / "faults_digits.json"
    argv = [DISTILL, "sweep", str(config), "--workers", "0"]  # Ray's start-up: the slow tests
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dm = next(iter((tmp_path / "runs" / "digits").glob("dm-*")), None)

    def mid_dm_cell() -> bool:
        nonlocal dm
        dm = dm or next(iter((tmp_path / "runs" / "digits").glob("dm-*")), None)
        return dm is not None and _last_iteration(dm) >= 13

    _kill_when(proc, mid_dm_cell)
    before = load_rows(results)
    assert [r["method"] for r in before] == ["random"]  # the finished cell is on disk
    out = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 already done" in out.stdout  # random is not run again
    after = load_rows(results)
    assert sorted(r["method"] for r in after) == ["dm", "random"]  # each once
    assert [r for r in after if r["method"] == "random"] == before  # untouched
    # dm ran again from its last checkpoint (none before 100 here): one record per iteration
    records = [json.loads(s) for s in (dm / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(1, 41))


# --- federated: Flower's deployment runtime and its simulation engine ---------------------------


def _supernode(home: Path, partition: int):
    """Our SuperNode process of `partition` (its FLWR_HOME is `home`), or None."""
    import psutil

    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
            if "flower-supernode" in cmd and f"partition-id={partition} " in cmd + " ":
                if env.get("FLWR_HOME") == str(home.resolve()):
                    return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return None


def test_a_supernode_killed_mid_run_leaves_a_finished_deployment_without_it(tmp_path):
    """Two SuperNodes on a loopback SuperLink; the second is SIGKILLed (with its ClientApp)
    once it has started working on the server's query. The run ends with client 0's summary,
    names client 1 missing, and leaves no Flower process behind."""
    import threading

    import psutil
    from federated_checks import flower_processes

    from datadistill_apps.federated.config import FedConfig
    from datadistill_apps.federated.deploy import deploy

    home, logs = tmp_path / "flwr-home", tmp_path / "logs"
    # enough work (seconds) that node 1 is still distilling when it is killed, however fast
    cfg = FedConfig(clients=2, ipc=1, iterations=100, epochs=1, timeout=150.0)
    outcome = {}
    run = threading.Thread(
        target=lambda: outcome.update(report=deploy(cfg, home=home, logs=logs, timeout=240))
    )
    run.start()
    deadline = time.monotonic() + 200
    log = logs / "supernode-1.log"
    while not (log.exists() and "Start `flwr-clientapp` process" in log.read_text()):
        assert run.is_alive() and time.monotonic() < deadline, "node 1 never got to work"
        time.sleep(0.1)
    node = _supernode(home, 1)
    victims = [node, *node.children(recursive=True)]
    for p in victims:
        try:
            p.kill()
        except psutil.NoSuchProcess:  # a short-lived helper process that ended by itself
            pass
    psutil.wait_procs(victims, timeout=10)
    run.join(timeout=260)
    report = outcome["report"]
    assert report["received"] == [0] and report["missing_clients"] == [1]
    assert report["nodes"] == 2 and len(report["failed_nodes"]) == 1
    assert report["bytes_up_per_client"]["0"] > 0 and 0.0 <= report["accuracy"] <= 1.0
    assert flower_processes(str(home)) == []


@pytest.mark.xdist_group("ray")  # they count Ray processes machine-wide: one worker runs them
def test_a_simulated_client_that_fails_leaves_a_finished_run_without_it():
    """Flower's simulation engine (Ray), two clients, one raising: one summary arrives."""
    from federated_checks import ray_left_behind, ray_pids

    from datadistill_apps.federated.config import FedConfig
    from datadistill_apps.federated.simulate import simulate

    others = ray_pids()  # another run's Ray, if any
    cfg = FedConfig(clients=2, ipc=1, iterations=2, epochs=1, fail_clients="1")
    report = simulate(cfg)
    assert report["received"] == [0] and report["missing_clients"] == [1]
    assert len(report["failed_nodes"]) == 1 and report["bytes_up_per_client"]["0"] > 0
    assert 0.0 <= report["accuracy"] <= 1.0
    assert ray_left_behind(others) == []
