"""What an interrupted federated run keeps on disk, so that a rerun goes on from it.

A one-shot run with many clients can take hours on a CPU (each client distils its
classes), and so can 20 rounds of FedAvg; Flower's simulation has no checkpoint of its
own. Each client writes its summary (core's atomic summary file) under `cache/` named by
the config's `summary_key()` and its partition id; a rerun with the same key loads it
instead of distilling again, and a client stopped mid-distillation resumes from its run
folder's checkpoint. FedAvg's server writes the global model and the curve so far
after every round that had every client's update (`fedavg_key()`); a rerun starts from
the last such round. In statistics mode each client keeps its upload (`statistics_key()`),
so cells that differ only in the server's IPC or iterations compute it once; a private
upload kept is the one release, reused at no further privacy cost, and the server's
distillation against the aggregated uploads checkpoints in a run folder of its own. A
corrupt or unreadable file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from flwr.common.logger import log as flwr_log
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_tensors

from datadistill.atomic import write_bytes
from datadistill.errors import DistillError
from datadistill.summary import Summary
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.statistics import ClassStatistics

Upload = tuple[ClassStatistics, dict | None]  # a statistics upload and its mechanism's record


def path_of(cfg: FedConfig, pid: int) -> Path:
    return Path(cfg.cache) / f"{cfg.summary_key()}-client{pid}.safetensors"


def run_folder(cfg: FedConfig, pid: int) -> Path | None:
    """Where the client's distillation checkpoints while it runs (None without a cache)."""
    return Path(cfg.cache) / f"{cfg.summary_key()}-client{pid}-run" if cfg.cache else None


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


def server_run_folder(cfg: FedConfig, stats: ClassStatistics) -> Path | None:
    """Where the server's distillation checkpoints (None without a cache), named by what
    decides it: the server's settings and the aggregated statistics themselves, so a rerun
    whose replies differ (a client lost, another noise draw) never resumes another's run."""
    if not cfg.cache:
        return None
    digest = hashlib.sha256()
    settings = (cfg.statistics_key(), cfg.ipc, cfg.iterations, cfg.server_lr, cfg.seed)
    digest.update(repr(settings).encode())
    for t in (stats.counts, stats.member_counts, stats.means):
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return Path(cfg.cache) / f"server-{digest.hexdigest()[:12]}-run"


def statistics_path(cfg: FedConfig, pid: int) -> Path:
    return Path(cfg.cache) / f"{cfg.statistics_key()}-statistics{pid}.safetensors"


def cached_statistics(
    cfg: FedConfig, pid: int, compute: Callable[[], Upload]
) -> tuple[Upload, bool]:
    """The client's statistics upload from the cache, else `compute()` saved there;
    (upload, hit)."""
    path = statistics_path(cfg, pid) if cfg.cache else None
    if path is not None and path.exists():
        try:
            with safe_open(str(path), framework="pt") as f:
                t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
                record = json.loads(f.metadata()["privacy"])
            stats = ClassStatistics(t["counts"], t["member_counts"], t["means"])
            return (stats, record), True
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            flwr_log(logging.WARNING, "client %d: cached upload unusable (%s); computing", pid, e)
    stats, record = compute()
    if path is not None:
        names = ("counts", "member_counts", "means")
        tensors = {k: getattr(stats, k).contiguous() for k in names}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, save_tensors(tensors, metadata={"privacy": json.dumps(record)}))
    return (stats, record), False


def fedavg_path(cfg: FedConfig) -> Path:
    return Path(cfg.cache) / f"{cfg.fedavg_key()}-fedavg.safetensors"


def save_fedavg(cfg: FedConfig, rnd: int, state: dict[str, torch.Tensor], curve: dict) -> None:
    """FedAvg's global model after round `rnd` and the curve up to it (atomic write)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {"round": str(rnd), "curve": json.dumps({str(k): v for k, v in curve.items()})}
    path = fedavg_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, save_tensors(tensors, metadata=meta))


def load_fedavg(cfg: FedConfig) -> tuple[int, dict[str, torch.Tensor], dict[int, dict]] | None:
    """(round, global model, curve) of the last complete round kept, or None."""
    path = fedavg_path(cfg) if cfg.cache else None
    if path is None or not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            meta = f.metadata()
        curve = {int(k): v for k, v in json.loads(meta["curve"]).items()}
        return int(meta["round"]), tensors, curve
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        flwr_log(logging.WARNING, "FedAvg checkpoint %s unusable (%s); from round 0", path, e)
        return None
