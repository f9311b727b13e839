"""`distill continual` is bounded and resumable: rows land as each (strategy, order) ends, a
killed run resumes without repeating finished streams or distillations, --time-limit stops
between units, and a folder of another run is refused."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("avalanche")

from datadistill.errors import DistillError  # noqa: E402
from datadistill.loop import CHECKPOINT_FILE  # noqa: E402
from datadistill_apps.continual import plugin  # noqa: E402
from datadistill_apps.continual.run_folder import DISTILLATIONS, ROWS_FILE  # noqa: E402

DISTILL = str(Path(sys.executable).parent / "distill")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DATADISTILL_COMPILE": "0"}
ARGS = [
    "continual", "--strategies", "distill-recall,naive", "--seeds", "2", "--memory", "2",
    "--iterations", "5", "--arch", "mlp", "--epochs", "1", "--recall-epochs", "3", "--quiet",
]  # fmt: skip


def _rows(out):
    path = out / ROWS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def _stamps(out) -> dict[str, int]:
    """Each distillation's checkpoint and when it was last written."""
    folders = (out / DISTILLATIONS).glob("*")
    return {f.name: (f / CHECKPOINT_FILE).stat().st_mtime_ns for f in folders
            if (f / CHECKPOINT_FILE).exists()}  # fmt: skip


def test_a_killed_continual_run_resumes_without_repeating_finished_work(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([DISTILL, *ARGS, "--out", str(out)], env=ENV)
    deadline = time.monotonic() + 240
    while not _rows(out):  # SIGKILL as soon as the first unit's row is on disk
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    first = _rows(out)
    assert [(r["strategy"], r["seed"]) for r in first] == [("distill-recall", 0)]
    stamps = _stamps(out)
    assert len(stamps) >= 5  # order 0's five experiences, each distilled once
    subprocess.run([DISTILL, *ARGS, "--out", str(out)], env=ENV, check=True, timeout=300)
    rows = _rows(out)
    seeds = sorted((r["strategy"], r["seed"]) for r in rows if "seeds" not in r)
    assert seeds == [("distill-recall", 0), ("distill-recall", 1), ("naive", 0), ("naive", 1)]
    assert sorted(r["strategy"] for r in rows if "seeds" in r) == ["distill-recall", "naive"]
    kept = next(r for r in rows if (r["strategy"], r.get("seed")) == ("distill-recall", 0))
    assert kept["seconds"] == first[0]["seconds"]  # the finished stream was not run again
    after = _stamps(out)
    assert {k: after[k] for k in stamps} == stamps  # nor any finished distillation
    assert len(after) == 10  # two orders x five experiences, none twice


def _cmd(argv: list[str]):
    parser = argparse.ArgumentParser()
    handlers = plugin.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def test_time_limit_stops_between_units_and_a_rerun_finishes(tmp_path, monkeypatch, digits, capsys):
    from datadistill import data as datasets

    monkeypatch.setattr(datasets, "load", lambda *a, **k: digits)
    out = tmp_path / "run"
    argv = [*ARGS, "--strategies", "naive", "--device", "cpu", "--out", str(out)]
    assert _cmd([*argv, "--time-limit", "0"]) == []
    assert "rerun the same command" in capsys.readouterr().out
    started = time.monotonic()
    rows = _cmd(argv)
    assert len(rows) == 3 and time.monotonic() - started < 120
    assert "time limit" not in capsys.readouterr().out
    with pytest.raises(DistillError, match="other settings \\(epochs\\)"):
        _cmd([*argv, "--epochs", "2"])


def test_default_out_is_under_runs():
    from datadistill_apps.continual.run_folder import default_out

    assert default_out("split-digits", 10).parts == ("runs", "continual-split-digits-m10")
    assert sys.modules["datadistill_apps.continual.plugin"]
