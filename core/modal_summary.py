"""The summary file for modalities other than images: own tensor names, the same metadata.

DESIGN.md's format is one ``.safetensors`` file readable with plain ``safetensors`` + ``json``
and one JSON object under the metadata key ``datadistill``. Recommender data (a synthetic
user-item matrix) and text (synthetic sequences of word embeddings) keep that file and that
metadata block (format version, dataset, method, objective, parameterisation, ipc, n,
stored bytes, config, seed, library version, created time, extra) and add ``modality`` and
their own shape fields; only the tensor names differ. `core.summary.Summary.load` refuses
such a file with a message naming the loader, and these loaders refuse an image summary.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import safetensors
import safetensors.torch as st
import torch

from core import atomic
from core.errors import DistillError, SummaryFormatError
from core.summary import (
    _RERUN,
    FORMAT_VERSION,
    METADATA_KEY,
    _check_header,
    _first_line,
    _infinities_as_strings,
    _parse_metadata,
    library_version,
)


def base_metadata(summary, *, modality: str, dataset: str) -> dict:
    """The metadata block every summary file carries (`core.summary.Summary.metadata`'s keys
    that do not describe images), plus the modality, read from `summary`'s fields (method,
    objective, parameterisation, ipc, n, stored_bytes, config, seed, created, extra)."""
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
        "created": summary.created or datetime.now(UTC).isoformat(timespec="seconds"),
        "extra": summary.extra,
    }


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write `tensors` and `meta` atomically; refuses NaN/inf (a diverged run)."""
    for name, t in tensors.items():
        if (t.is_floating_point() or t.is_complex()) and not torch.isfinite(t).all():
            raise DistillError(
                f"summary tensor '{name}' contains NaN/inf: the run diverged; lower the "
                "learning rate and re-run"
            )
    try:
        text = json.dumps(_infinities_as_strings(meta), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise DistillError(
            f"summary metadata is not JSON-serialisable ({e}); keep config and extra to "
            "str/int/float/bool/list/dict with finite numbers"
        ) from None
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return atomic.write_bytes(path, st.save(tensors, metadata={METADATA_KEY: text}))


def load(
    path: str | os.PathLike, *, modality: str, required: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a `modality` summary file; refuses anything else clearly."""
    path = Path(path)
    _check_header(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
            if raw is None:
                raise SummaryFormatError(
                    f"'{path}' is not a datadistill summary (no '{METADATA_KEY}' metadata); "
                    "pass a file written by `distill run`"
                )
            meta = _parse_metadata(raw, path)
            found = meta.get("modality", "image")
            if found != modality:
                raise SummaryFormatError(
                    f"'{path}' is a {found} summary, not a {modality} summary; load it with "
                    + ("core.summary.Summary.load" if found == "image" else f"core.{found}.summary")
                )
            missing = [k for k in required if k not in f.keys()]
            if missing:
                raise SummaryFormatError(
                    f"summary file '{path}' lacks the tensor(s) {', '.join(missing)}; {_RERUN}"
                )
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SummaryFormatError(
            f"summary file '{path}' is truncated or corrupt ({_first_line(e)}); {_RERUN}"
        ) from None
    return tensors, meta
