"""Immutable evidence: a result row names the summary it evaluated by path and sha256.

A run continued in place used to replace `summary.safetensors`, so a row written before
the continuation cited a file that no longer held what it measured. Now the outer loop
also keeps each finished summary as `summary-it{N}.safetensors` (N: iterations run),
written once and never replaced, beside the latest copy; rows cite that file and its
content hash (`cite`), and `verify` checks a row against the repository.

Rows written before hashes were kept whose file was since overwritten (or never
committed) cannot get their hash back; they say so explicitly (`summary_sha256: null` with
`summary_note` one of `NO_HASH`) rather than cite a file that is not theirs.

    python -m datadistill.evidence experiments/results/*.json   # fill in missing hashes
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import safetensors

from datadistill import atomic

CITES = ("summary", "summary_file", "source")  # row keys that may name a summary file
HASH_KEY, NOTE_KEY = "summary_sha256", "summary_note"
OVERWRITTEN = "overwritten before hashes were kept"
MISSING = "not in the repository when hashes were first kept"
NO_HASH = (OVERWRITTEN, MISSING)  # the only reasons a citing row may lack a hash


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def kept_name(iteration: int) -> str:
    return f"summary-it{iteration}.safetensors"


def budget_name(seconds: float, clock: str) -> str:
    """The summary a run kept when it had spent `seconds` on `clock` (a budget stop)."""
    return f"summary-budget{seconds:g}{'cpu' if clock == 'cpu' else ''}s.safetensors"


def keep(latest: Path, iteration: int) -> Path:
    """Keep an immutable copy of the summary at `latest` after `iteration` iterations:
    `summary-it{iteration}.safetensors` beside it (see `keep_as`). Returns the copy's path."""
    return keep_as(latest.with_name(kept_name(iteration)), latest.read_bytes())


def keep_as(path: Path, data: bytes) -> Path:
    """Write `data` at `path` once, never replacing other bytes there.

    When `path` already holds other bytes (a rerun from scratch, another device), this copy
    is kept as `{stem}-{sha8}{suffix}` beside it. Returns the path that holds `data`."""
    digest = hashlib.sha256(data).hexdigest()
    if path.exists() and sha256(path) != digest:
        path = path.with_name(f"{path.stem}-{digest[:8]}{path.suffix}")
    if not path.exists():
        atomic.write_bytes(path, data)
    return path


def with_hash(row: dict, root: str | Path = ".") -> dict:
    """`row` with the sha256 of the summary it cites, when it cites an existing file and has
    none yet (result writers call this, so no new row cites a summary without its hash)."""
    path = cited(row)
    if path is not None and HASH_KEY not in row and (Path(root) / path).is_file():
        row = {**row, HASH_KEY: sha256(Path(root) / path)}
    return row


def cited(row: dict) -> str | None:
    """The summary path a row cites, if any."""
    for key in CITES:
        value = row.get(key)
        if isinstance(value, str) and value.endswith(".safetensors"):
            return value
    return None


def keep_summary(summary, path: Path) -> Path:
    """Save `summary` (anything with `.save(path)`) at `path` once, never replacing other
    bytes there (`keep_as`): what an app trained on, kept for its rows to cite."""
    with tempfile.TemporaryDirectory() as tmp:
        data = summary.save(Path(tmp) / path.name).read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    return keep_as(path, data)


def verify(row: dict, root: str | Path, hashes: dict[str, list[Path]] | None = None) -> str | None:
    """None when `row` cites no summary or cites one that exists with its recorded hash (or
    says explicitly that it was overwritten); otherwise what is wrong.

    Args:
        hashes: sha256 -> files in the repository (`index`); the cited content may have moved.
    """
    path = cited(row)
    if path is None:
        return None
    digest = row.get(HASH_KEY)
    if digest is None:
        return None if row.get(NOTE_KEY) in NO_HASH else f"cites {path} without a sha256"
    file = Path(root) / path
    if file.is_file() and sha256(file) == digest:
        return None
    if hashes is not None and hashes.get(digest):
        return None
    return f"cites {path} with sha256 {digest[:12]}..., which no file in the repository has"


def index(root: str | Path, pattern: str = "experiments/results/**/*.safetensors") -> dict:
    """sha256 -> the files under `root` matching `pattern` that have it."""
    out: dict[str, list[Path]] = {}
    for path in sorted(Path(root).glob(pattern)):
        out.setdefault(sha256(path), []).append(path)
    return out


def run_iterations(path: str | Path) -> int | None:
    """The iterations a summary file records having run (its `extra.run`), if it says."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("datadistill", "{}"))
    except (safetensors.SafetensorError, OSError, ValueError):
        return None
    run = (meta.get("extra") or {}).get("run") if isinstance(meta.get("extra"), dict) else None
    return run.get("iterations") if isinstance(run, dict) else None


def backfill(row: dict, root: str | Path) -> str:
    """Give a row written before hashes were kept its summary's hash when the cited file is
    still the one it evaluated (same iterations), else mark it overwritten. Returns the class:
    "none" (cites nothing), "hashed" (already had one), "backfilled", "overwritten" (the file
    records other iterations than the row) or "missing"."""
    path = cited(row)
    if path is None:
        return "none"
    if row.get(HASH_KEY) or row.get(NOTE_KEY) in NO_HASH:
        return "hashed"
    file = Path(root) / path
    if not file.is_file():
        row[HASH_KEY], row[NOTE_KEY] = None, MISSING
        return "missing"
    ran = run_iterations(file)
    if ran is None or ran == row.get("iterations"):
        row[HASH_KEY] = sha256(file)
        return "backfilled"
    row[HASH_KEY], row[NOTE_KEY] = None, OVERWRITTEN
    return "overwritten"


def main(argv: list[str]) -> int:
    """Backfill hashes in the results files named (the format `datadistill.results` writes;
    read here without it, since the results module calls this one)."""
    counts: dict[str, int] = {}
    for name in argv:
        path = Path(name)
        rows = json.loads(path.read_text()) if path.exists() else []
        classes = [backfill(r, ".") if isinstance(r, dict) else "none" for r in rows]
        for c in classes:
            counts[c] = counts.get(c, 0) + 1
        if {"backfilled", "overwritten", "missing"} & set(classes):
            atomic.write_bytes(path, (json.dumps(rows, indent=1) + "\n").encode())
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
