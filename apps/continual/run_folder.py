"""A continual run's folder: its settings, its finished (strategy, order) rows, its distillations.

`distill continual` is bounded and resumable like `distill run`: each unit of work, one
strategy on one class order, appends its row to OUT/rows.json as it ends, and each
experience's distillation checkpoints under OUT/distillations/. A rerun of the same command
skips the finished units and resumes the distillations; a folder holding a run with other
settings is refused rather than mixed with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from datadistill.atomic import write_bytes
from datadistill.errors import DistillError
from datadistill.results import append_rows, load_rows

SETTINGS_FILE = "settings.json"
ROWS_FILE = "rows.json"
DISTILLATIONS = "distillations"
MEMORIES = "memories"


def default_out(benchmark: str, memory: int) -> Path:
    return Path("runs") / f"continual-{benchmark}-m{memory}"


def memory_file(out: Path, strategy: str, order: int) -> Path:
    """Where a unit's final memory is kept for its row to cite."""
    return out / MEMORIES / f"{strategy}-order{order}.safetensors"


def claim(out: Path, settings: dict) -> None:
    """Record `settings` in `out`, or check that the run already there used the same ones."""
    path = out / SETTINGS_FILE
    if path.exists():
        before = json.loads(path.read_text())
        if before != settings:
            changed = sorted(k for k in settings.keys() | before.keys()
                             if before.get(k) != settings.get(k))  # fmt: skip
            raise DistillError(
                f"--out {out} holds a continual run with other settings ({', '.join(changed)}); "
                "give another --out, or delete that folder to start afresh"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise DistillError(
            f"--out {out} is not empty and holds no continual run; give another --out"
        )
    write_bytes(path, (json.dumps(settings, indent=1, sort_keys=True) + "\n").encode())


def finished(out: Path) -> dict[tuple[str, int], dict]:
    """{(strategy, order): row} of the units this folder has finished."""
    rows = load_rows(out / ROWS_FILE)
    return {(r["strategy"], r["seed"]): r for r in rows if "seed" in r and r.get("runs") == 1}


def record(out: Path, rows: list[dict]) -> None:
    """Append rows (atomic), replacing those of the same identity."""
    append_rows(out / ROWS_FILE, rows)
