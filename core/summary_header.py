"""Read a summary file's metadata from its header alone, without touching its tensors.

A safetensors file starts with an 8-byte little-endian length and that many bytes of JSON
(tensor names, shapes, offsets, and ``__metadata__``). Deciding which loader a file needs
(`datadistill.modality`) therefore costs one small read, however large the tensors are, and a file
whose header is unreadable is refused here with the same one-line messages as the loaders.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from datadistill.errors import SummaryFormatError
from datadistill.summary_file import METADATA_KEY, RERUN, check_header, parse_metadata

DEFAULT_MODALITY = "image"  # files written before `modality` existed hold images


def read_header(path: str | os.PathLike) -> dict:
    """The safetensors header of `path` as a dict (tensor entries and ``__metadata__``)."""
    path = Path(path)
    check_header(path)  # exists, is a file, the length fits in the file, JSON follows
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt (its safetensors header is not "
            f"valid JSON); {RERUN}"
        ) from None
    if not isinstance(header, dict):
        raise SummaryFormatError(
            f"summary file '{path}' is corrupt (its safetensors header is not a JSON object); "
            f"{RERUN}"
        )
    return header


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``datadistill`` metadata block of `path`, parsed and version-checked."""
    meta = read_header(path).get("__metadata__") or {}
    raw = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(raw, str):
        raise SummaryFormatError(
            f"'{path}' is not a datadistill summary (no '{METADATA_KEY}' metadata); pass a file "
            "written by `distill run`"
        )
    return parse_metadata(raw, Path(path))


def modality_of(path: str | os.PathLike, meta: dict | None = None) -> str:
    """The modality `path` declares ("image" when it declares none); `meta` if already read."""
    meta = read_metadata(path) if meta is None else meta
    modality = meta.get("modality", DEFAULT_MODALITY)
    if not isinstance(modality, str) or not modality:
        raise SummaryFormatError(
            f"summary file '{path}' declares an invalid modality {modality!r}; {RERUN}"
        )
    return modality
