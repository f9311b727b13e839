"""The summary file for modalities other than images: own tensor names, the same metadata.

DESIGN.md's format is one ``.safetensors`` file readable with plain ``safetensors`` + ``json``
and one JSON object under the metadata key ``datadistill``. Recommender data (a synthetic
user-item matrix) and text (synthetic sequences of word embeddings) keep that file and that
metadata block (format version, dataset, method, objective, parameterisation, ipc, n,
stored bytes, config, seed, library version, created time, extra) and add ``modality`` and
their own shape fields; only the tensor names differ. `datadistill.summary.Summary.load` refuses
such a file with a message naming the loader, and these loaders refuse an image summary.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import safetensors.torch as st
import torch

from datadistill import atomic
from datadistill.errors import DistillError
from datadistill.summary import (
    FORMAT_VERSION,
    METADATA_KEY,
    _infinities_as_strings,
    library_version,
    read_file,
)


def base_metadata(summary, *, modality: str, dataset: str) -> dict:
    """The metadata block every summary file carries (`datadistill.summary.Summary.metadata`'s keys
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
    return read_file(path, modality=modality, required=required)
