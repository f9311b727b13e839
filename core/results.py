"""Result rows: one schema for every experiment, so one script can tabulate them all.

A results file (`experiments/results/*.json`) is a JSON list of rows. Required keys are
`ROW_KEYS`; rows may carry more (per-run accuracies, eval epochs, seeds, notes). Rows are
appended atomically and replace an earlier row with the same `key_of`, so re-running a
cell updates it instead of duplicating it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from datadistill import evidence

ROW_KEYS = (
    "method", "dataset", "ipc", "iterations", "arch", "runs", "acc_mean", "acc_std",
    "images", "stored_bytes", "sec_per_iter", "peak_mem_mb", "command",
)  # fmt: skip
# `epochs` is a stream's training epochs per experience (continual), `budget_seconds` an
# equal-compute budget (a coreset answers two budgets with one selection): rows that differ
# in them are different experiments, not a rerun of one
IDENTITY = (
    "method", "dataset", "ipc", "iterations", "arch", "eval_epochs", "epochs", "seed", "variant",
    "budget_seconds", "budget_clock",
)  # fmt: skip


_COMMAND: list[str] = []


def set_command(argv: list[str]) -> None:
    """Record the `distill` command being run (the CLI calls this; scripts need not)."""
    set_command_line(" ".join(["distill", *map(shlex.quote, argv)]))


def set_command_line(line: str) -> None:
    """Record a command line as typed (a sweep's workers record their driver's)."""
    _COMMAND[:] = [line]


def command_line() -> str:
    """The command that is running, as a user would type it."""
    if _COMMAND:
        return _COMMAND[0]
    prog = Path(sys.argv[0]).name
    prog = "distill" if prog in ("distill", "__main__.py") else f"python {sys.argv[0]}"
    return " ".join([prog, *map(shlex.quote, sys.argv[1:])])


def key_of(row: dict) -> tuple:
    return tuple(row.get(k) for k in IDENTITY)


def check_row(row: dict) -> dict:
    missing = [k for k in ROW_KEYS if k not in row]
    if missing:
        raise ValueError(f"result row lacks {', '.join(missing)}")
    return row


def load_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return json.loads(path.read_text())


def append_rows(path: str | Path, rows: Iterable[dict]) -> list[dict]:
    """Add `rows` to the JSON list at `path` (atomic), replacing rows with the same identity."""
    path = Path(path)
    new = [evidence.with_hash(check_row(dict(r))) for r in rows]
    keys = {key_of(r) for r in new}
    path.parent.mkdir(parents=True, exist_ok=True)
    # parallel workers append to one file safely; the lock is the folder's, held on an open
    # descriptor, so the kernel releases it when the process ends and no lock file is left
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        kept = [r for r in load_rows(path) if key_of(r) not in keys]
        write_json(path, kept + new)
    finally:
        os.close(folder)
    return kept + new


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def fmt_acc(row: dict) -> str:
    return f"{100 * row['acc_mean']:.2f} ± {100 * row['acc_std']:.2f}"


def table(rows: list[dict], columns: list[tuple[str, callable]] | None = None) -> str:
    """A Markdown table of rows (also readable in a terminal)."""
    columns = columns or [
        ("method", lambda r: r["method"]),
        ("dataset", lambda r: r["dataset"]),
        ("IPC", lambda r: str(r["ipc"])),
        ("arch", lambda r: r["arch"]),
        ("images", lambda r: str(r["images"])),
        ("bytes", lambda r: fmt_bytes(r["stored_bytes"])),
        ("acc % (mean ± std)", fmt_acc),
        ("runs", lambda r: str(r["runs"])),
        ("s/iter", lambda r: _num(r.get("sec_per_iter"))),
        ("distill s", lambda r: _num(r.get("distill_seconds"))),
        ("eval s", lambda r: _num(r.get("eval_seconds"))),
    ]
    head = "| " + " | ".join(c for c, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(f(r) for _, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)
