"""The summary file format, once for every modality: how a summary is written and read.

DESIGN.md's format is one ``.safetensors`` file readable with plain ``safetensors`` + ``json``:
the modality's tensors (images and labels; a graph's features, adjacency and labels; a
recommender's interactions; text's embeddings, labels, tokens) and one JSON object under the
metadata key ``datadistill``: format version, modality (absent: images), dataset, method,
objective, parameterisation, ipc, n, stored bytes, config, seed, library version, created
time, extra, plus each modality's shape fields. Every summary class (`datadistill.summary`,
`datadistill.graph.summary`, `datadistill.recsys.summary`, `datadistill.text.summary`)
saves with `write` and loads with `read`, so a truncated, foreign, newer or wrong-modality
file gets the same one-line refusal everywhere; `datadistill.summary_header` reads the
metadata alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import struct
from datetime import UTC, datetime
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

from datadistill import atomic
from datadistill.errors import DistillError, SummaryFormatError

FORMAT_VERSION = 1
METADATA_KEY = "datadistill"
RERUN = "re-run `distill run` or restore the file"
# A header (tensor entries + metadata) of the largest committed summary is 17 KB and its
# metadata 3 levels deep; the bounds leave room for thousands of tensors and nested configs
# while refusing a crafted file before it costs memory or overflows the JSON parser's stack.
MAX_HEADER_BYTES = 1 << 20
MAX_METADATA_DEPTH = 16
# The types of the metadata keys every modality shares (present keys only: a graph summary
# has no image_shape); anything else is refused before a loader or `show` trips on it.
METADATA_TYPES = {
    "dataset": str, "method": str, "objective": str, "parameterisation": str,
    "modality": str, "dsa_strategy": str, "library_version": str, "created": str,
    "num_classes": int, "ipc": int, "n": int, "seed": int, "soft_labels": bool,
    "stored_bytes": int | None, "config": dict, "extra": dict,
    "image_shape": list, "mean": list, "std": list,
}  # fmt: skip
NUMBER = int | float | None  # JSON has one number type; None where nothing was measured
RUN_TYPES = {
    "iterations": int, "sec_per_iter": NUMBER, "seconds": NUMBER, "cpu_seconds": NUMBER,
    "peak_mem_mb": NUMBER,
}  # fmt: skip


def library_version() -> str:
    """Installed datadistill version, recorded so a file says what produced it."""
    try:
        return importlib.metadata.version("datadistill")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+local"


def now() -> str:
    """The `created` time a summary records on its first save."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_metadata(summary, *, modality: str, dataset: str) -> dict:
    """The metadata block every non-image summary file carries, read from `summary`'s fields
    (method, objective, parameterisation, ipc, n, stored_bytes, config, seed, created, extra)."""
    return {
        "format_version": FORMAT_VERSION,
        "modality": modality,
        "dataset": dataset,
        "method": summary.method,
        "objective": summary.objective,
        "parameterisation": summary.parameterisation,
        "ipc": summary.ipc,
        "n": summary.n,
        "stored_bytes": summary.stored_bytes,
        "config": summary.config,
        "seed": summary.seed,
        "library_version": library_version(),
        "created": summary.created or now(),
        "extra": summary.extra,
    }


def write(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write `tensors` and `meta` atomically (a crash never leaves a half-written file);
    refuses NaN/inf tensors (a diverged run) and metadata JSON cannot hold."""
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not torch.isfinite(t).all():
            raise DistillError(
                f"summary tensor '{name}' contains NaN/inf: the run diverged; lower the "
                "learning rate and re-run"
            )
    try:
        text = json.dumps(infinities_as_strings(meta), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DistillError(
            f"summary metadata is not JSON-serialisable ({e}); "
            "keep config and extra to str/int/float/bool/list/dict with finite numbers"
        ) from None
    # clone: safetensors refuses tensors that share storage (e.g. a param aliasing images)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return atomic.write_bytes(path, st.save(tensors, metadata={METADATA_KEY: text}))


def read(
    path: str | os.PathLike, *, modality: str, required: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a summary file of `modality`: the one reader for every modality,
    so a truncated, foreign or wrong-modality file gets the same clear message everywhere."""
    path = Path(path)
    check_header(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
            if raw is None:
                raise SummaryFormatError(
                    f"'{path}' is not a datadistill summary (no '{METADATA_KEY}' metadata); "
                    "pass a file written by `distill run`"
                )
            meta = parse_metadata(raw, path)
            found = meta.get("modality", "image")
            if found != modality:
                loader = (
                    "datadistill.summary.Summary.load"
                    if found == "image"
                    else f"datadistill.{found}.summary"
                )
                raise SummaryFormatError(
                    f"'{path}' is {_a(found)} summary, not {_a(modality)} summary; load it with "
                    f"{loader} (`distill eval` and `distill show` read every modality)"
                )
            keys = set(f.keys())
            missing = [k for k in required if k not in keys]
            if missing:
                names = ", ".join(f"'{k}'" for k in missing)
                noun = "tensor" if len(missing) == 1 else "tensors"
                raise SummaryFormatError(f"summary file '{path}' lacks the {names} {noun}; {RERUN}")
            tensors = {k: f.get_tensor(k) for k in keys}
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt ({first_line(e)}); {RERUN}"
        ) from None
    return tensors, meta


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def check_header(path: Path) -> None:
    """Check existence and the 8-byte header length before safetensors sees the file.

    Catches truncation and foreign files with a clear message, and avoids asking
    safetensors to parse a header length that points past the end of the file.
    """
    if not path.exists():
        raise SummaryFormatError(f"summary file '{path}' not found; check the path")
    if not path.is_file():
        raise SummaryFormatError(f"summary path '{path}' is not a file; pass a .safetensors file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) < 9:
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt ({size} bytes, too short for a "
            f"safetensors header); {RERUN}"
        )
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > MAX_HEADER_BYTES and header_len <= size - 8:
        raise SummaryFormatError(
            f"summary file '{path}' has a {header_len:,}-byte header, more than any summary "
            f"writes ({MAX_HEADER_BYTES:,}); refused as crafted or corrupt, {RERUN}"
        )
    if header_len > size - 8 or head[8:9] != b"{":
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt (safetensors header unreadable); "
            f"{RERUN}"
        )


def infinities_as_strings(obj):
    """JSON has no infinity: a setting of +-inf (no privacy budget, say) is written "inf" or
    "-inf", which `Method.config` reads back as the float. NaN stays an error."""
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: infinities_as_strings(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [infinities_as_strings(v) for v in obj]
    return obj


def parse_metadata(raw: str, path: Path) -> dict:
    if len(raw) > MAX_HEADER_BYTES:  # the header check bounds it already; a direct caller
        raise SummaryFormatError(
            f"summary file '{path}' has {len(raw):,} bytes of metadata, more than any summary "
            f"writes; refused as crafted or corrupt, {RERUN}"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SummaryFormatError(
            f"summary file '{path}' has unreadable '{METADATA_KEY}' metadata (invalid JSON: "
            f"{e.msg}); {RERUN}"
        ) from None
    except RecursionError:
        raise SummaryFormatError(
            f"summary file '{path}' has malformed metadata (nested too deep to parse); {RERUN}"
        ) from None
    if not isinstance(meta, dict):
        raise SummaryFormatError(
            f"summary file '{path}' has '{METADATA_KEY}' metadata that is not a JSON object; "
            f"{RERUN}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SummaryFormatError(
            f"summary file '{path}' has no valid format_version in its metadata; {RERUN}"
        )
    if version > FORMAT_VERSION:
        raise SummaryFormatError(
            f"summary file '{path}' uses format version {version}, newer than this library "
            f"supports ({FORMAT_VERSION}); upgrade datadistill"
        )
    check_metadata_types(meta, path)
    return meta


def json_depth(obj) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, todo = 0, [(obj, 0)]
    while todo:
        value, depth = todo.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            deepest = max(deepest, depth + 1)
            todo.extend((v, depth + 1) for v in children)
    return deepest


def check_metadata_types(meta: dict, path: Path) -> None:
    """Refuse metadata nested too deep or whose shared keys have the wrong types."""

    def refuse(what: str):
        return SummaryFormatError(f"summary file '{path}' has malformed metadata ({what}); {RERUN}")

    if json_depth(meta) > MAX_METADATA_DEPTH:
        raise refuse(f"nested deeper than {MAX_METADATA_DEPTH} levels")
    blocks = [(meta, METADATA_TYPES, "")]
    if isinstance(meta.get("extra"), dict) and "run" in meta["extra"]:
        run = meta["extra"]["run"]
        if not isinstance(run, dict):
            raise refuse(f"extra.run is {type(run).__name__}, expected an object")
        blocks.append((run, RUN_TYPES, "extra.run."))
    for block, types, prefix in blocks:
        for key, kind in types.items():
            if key not in block:
                continue
            value = block[key]
            # bool is an int to Python, never to this format
            ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
            if not ok:
                raise refuse(f"{prefix}{key} is {type(value).__name__} {clip(value)}")
    for key in ("image_shape", "mean", "std"):
        if any(not isinstance(v, int | float) or isinstance(v, bool) for v in meta.get(key, [])):
            raise refuse(f"{key} holds non-numbers {clip(meta[key])}")


def clip(value, limit: int = 40) -> str:
    """A value's repr cut to `limit` characters, so a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
