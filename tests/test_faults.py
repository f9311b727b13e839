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

import torch
import yaml

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
    saved = torch.load(cut / "checkpoint.pt", weights_only=False)["state"]["iteration"]
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
