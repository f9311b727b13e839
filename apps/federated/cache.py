"""Finished clients' summaries on disk, so an interrupted one-shot run resumes.

A one-shot run with many clients can take hours on a CPU (each client distils its
classes); Flower's simulation has no checkpoint of its own. Each client writes its
summary (core's atomic summary file) under `cache/` named by the config's
`summary_key()` and its partition id; a rerun with the same key loads it instead of
distilling again. A corrupt or unreadable file is distilled again, never trusted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flwr.common.logger import log as flwr_log

from apps.federated.config import FedConfig
from core.errors import DistillError
from core.summary import Summary


def path_of(cfg: FedConfig, pid: int) -> Path:
    return Path(cfg.cache) / f"{cfg.summary_key()}-client{pid}.safetensors"


def cached(cfg: FedConfig, pid: int, distil: Callable[[], Summary]) -> tuple[Summary, bool]:
    """The client's summary from the cache, else `distil()` saved there; (summary, hit)."""
    if not cfg.cache:
        return distil(), False
    path = path_of(cfg, pid)
    if path.exists():
        try:
            return Summary.load(path), True
        except DistillError as e:
            flwr_log(logging.WARNING, "client %d: cached summary unusable (%s); distilling", pid, e)
    summary = distil()
    path.parent.mkdir(parents=True, exist_ok=True)
    summary.save(path)
    return summary, False
