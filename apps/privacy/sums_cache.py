"""The noiseless clipped class sums, kept for the next release that differs only in its noise.

A dp-dm release costs two passes over the private data (every example under every pool
member); the clipped sums they produce depend on the data, the embedders, the clip norm and
the count share, never on epsilon. A privacy-utility curve (one release per epsilon) or a
search over epsilons therefore pays the passes once per setting and draws fresh noise each
time, with the result bit-identical to recomputing them.

The file holds a function of the private data before any noise: it is kept in the local
cache folder (`DATADISTILL_CACHE`, beside the data on the machine that holds them), never
in a run folder or a summary, and `reuse_sums=false` turns it off.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors

from datadistill.atomic import write_bytes
from datadistill.coreset import cache_dir
from datadistill.data import Dataset
from datadistill_apps.privacy.release import ClassSums, Embedders

FORMAT = 1  # bump when the sums' definition changes, so older files are never read


def key(data: Dataset, embedders: Embedders, *, clip_norm: float, count_share: float) -> str:
    """A hash of everything the sums depend on: every training image and label, the
    embedders (seeds and draws), the clip norm and the count share."""
    h = hashlib.sha256()
    described = {
        "format": FORMAT,
        "dataset": data.spec.name,
        "arch": embedders.arch,
        "net_config": embedders.net_config,
        "dsa_strategy": embedders.dsa_strategy,
        "seeds": embedders.seeds,
        "clip_norm": repr(float(clip_norm)),
        "count_share": repr(float(count_share)),
    }
    h.update(json.dumps(described, sort_keys=True).encode())
    for draws in embedders.draws or []:
        for d in draws:
            h.update(d.op.encode())
            h.update(d.values.cpu().contiguous().numpy().tobytes())
    h.update(data.x_train.cpu().contiguous().numpy().tobytes())
    h.update(data.y_train.cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def path_of(name: str) -> Path:
    return cache_dir() / "dp-dm-sums" / f"{name}.safetensors"


def cached_sums(
    data: Dataset,
    embedders: Embedders,
    *,
    clip_norm: float,
    count_share: float,
    compute: Callable[[], ClassSums],
) -> tuple[ClassSums, bool]:
    """The sums from the cache, else `compute()` kept there; (sums, hit). A file that cannot
    be read is recomputed and replaced, never trusted."""
    path = path_of(key(data, embedders, clip_norm=clip_norm, count_share=count_share))
    if path.exists():
        try:
            with safe_open(str(path), framework="pt") as f:
                t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            return ClassSums(t["sums"], t["counts"], t["norms"]), True
        except (SafetensorError, OSError, KeyError, RuntimeError):
            pass
    sums = compute()
    tensors = {"sums": sums.sums, "counts": sums.counts, "norms": sums.norms}
    write_bytes(path, save_tensors({k: v.contiguous() for k, v in tensors.items()}))
    return sums, False
