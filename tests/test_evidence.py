"""Immutable evidence: rows cite summaries by path and sha256, and a continued run never
replaces a summary a row may cite."""

import json
import subprocess
from pathlib import Path

from datadistill import evidence
from datadistill.distill import RunOptions, run
from datadistill.results import append_rows, load_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"


def _repository_hashes() -> dict:
    """sha256 -> the summaries git tracks (a file only on someone's disk is no evidence)."""
    listed = subprocess.run(
        ["git", "ls-files", "*.safetensors"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        return evidence.index(ROOT)
    out: dict = {}
    for name in listed.stdout.split():
        out.setdefault(evidence.sha256(ROOT / name), []).append(ROOT / name)
    return out


def test_every_row_citing_a_summary_has_its_hash_and_the_file_exists():
    hashes = _repository_hashes()
    problems, cited, unhashed = [], 0, 0
    for path in sorted(RESULTS.glob("*.json")):
        rows = load_rows(path)
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or evidence.cited(row) is None:
                continue
            cited += 1
            unhashed += row.get(evidence.HASH_KEY) is None
            problem = evidence.verify(row, ROOT, hashes)
            if problem:
                problems.append(f"{path.name} {row['method']} IPC {row['ipc']}: {problem}")
    assert cited > 50 and not problems, problems[:5]
    assert unhashed == 0  # every citing row carries its hash (no "overwritten" exceptions left)


def test_verify_refuses_missing_or_wrong_hashes(tmp_path):
    (tmp_path / "s.safetensors").write_bytes(b"summary")
    row = {"summary": "s.safetensors"}
    assert "without a sha256" in evidence.verify(row, tmp_path)
    row[evidence.HASH_KEY] = evidence.sha256(tmp_path / "s.safetensors")
    assert evidence.verify(row, tmp_path) is None
    (tmp_path / "s.safetensors").write_bytes(b"overwritten")
    assert "no file in the repository has" in evidence.verify(row, tmp_path)
    moved = {row[evidence.HASH_KEY]: [tmp_path / "summary-it5.safetensors"]}
    assert evidence.verify(row, tmp_path, moved) is None  # the content still exists
    silent = {"summary": "s.safetensors", evidence.HASH_KEY: None}
    assert "without a sha256" in evidence.verify(silent, tmp_path)
    noted = {**silent, evidence.NOTE_KEY: evidence.OVERWRITTEN}
    assert evidence.verify(noted, tmp_path) is None  # the one explicit way to lack a hash


def test_backfill_hashes_only_a_file_that_still_holds_the_row(digits, tmp_path):
    run("dm", digits, 1, options=RunOptions(iterations=2, progress=False),
        overrides={"batch_real": 8}, out_dir=tmp_path)  # fmt: skip
    cite = str(tmp_path / "summary.safetensors")
    same = {"summary": cite, "iterations": 2}
    older = {"summary": cite, "iterations": 1}
    gone = {"summary": str(tmp_path / "absent.safetensors"), "iterations": 2}
    assert [evidence.backfill(r, "/") for r in (same, older, gone)] == [
        "backfilled", "overwritten", "missing"
    ]  # fmt: skip
    assert same[evidence.HASH_KEY] == evidence.sha256(cite)
    assert older[evidence.NOTE_KEY] == evidence.OVERWRITTEN and older[evidence.HASH_KEY] is None


def test_a_continued_run_keeps_the_summary_rows_cite(digits, tmp_path):
    opts = dict(progress=False, checkpoint_every=1)
    run("dm", digits, 1, options=RunOptions(iterations=2, **opts),
        overrides={"batch_real": 8}, out_dir=tmp_path)  # fmt: skip
    first = (tmp_path / "summary-it2.safetensors").read_bytes()
    assert first == (tmp_path / "summary.safetensors").read_bytes()
    rows = append_rows(tmp_path / "rows.json", [{
        "method": "dm", "dataset": "digits", "ipc": 1, "iterations": 2, "arch": "convnet",
        "runs": 1, "acc_mean": 0.5, "acc_std": 0.0, "images": 10, "stored_bytes": 1,
        "sec_per_iter": None, "peak_mem_mb": None, "command": "test",
        "summary": str(tmp_path / "summary-it2.safetensors"),
    }])  # fmt: skip
    assert rows[0][evidence.HASH_KEY] == evidence.sha256(tmp_path / "summary-it2.safetensors")
    run("dm", digits, 1, options=RunOptions(iterations=4, resume=True, **opts),
        overrides={"batch_real": 8}, out_dir=tmp_path)  # fmt: skip
    assert (tmp_path / "summary-it2.safetensors").read_bytes() == first  # never replaced
    assert (
        (tmp_path / "summary-it4.safetensors").read_bytes()
        == (tmp_path / "summary.safetensors").read_bytes()
        != first
    )
    assert evidence.verify(json.loads((tmp_path / "rows.json").read_text())[0], "/") is None


def test_keep_never_replaces_an_existing_copy(tmp_path):
    latest = tmp_path / "summary.safetensors"
    latest.write_bytes(b"first")
    assert evidence.keep(latest, 3).read_bytes() == b"first"
    latest.write_bytes(b"rerun")  # the same iteration count, other bytes
    other = evidence.keep(latest, 3)
    assert other.name.startswith("summary-it3-") and other.read_bytes() == b"rerun"
    assert (tmp_path / "summary-it3.safetensors").read_bytes() == b"first"


def test_a_cell_row_with_a_variant_has_a_command_that_makes_that_variant():
    """A variant is a change of settings: a row whose command lacks `--variant` would be
    rerun at the defaults (a byte budget or a validation split name their own variants)."""
    import re

    wrong = []
    for path in sorted(RESULTS.glob("*.json")):
        rows = load_rows(path)
        for row in rows if isinstance(rows, list) else []:
            command, variant = str(row.get("command") or ""), row.get("variant")
            if "experiments/cells.py" not in command or not variant:
                continue
            named = re.search(r"--variant (\S+)", command)
            implied = re.fullmatch(r"(val\d+-?)?(\d+B)?", variant)
            if not (named and named.group(1) in variant) and not implied:
                wrong.append(f"{path.name} {row['method']} IPC {row['ipc']} {variant}")
    assert not wrong, wrong
