"""The statistics scheme on Flower's Message API: one round, class statistics up.

The server broadcasts the pool description (`statistics.describe_pool`, its sample rate
included) and the clients' privacy budget, if any, in one `query.statistics` message; each
client replies with its class counts and per-member class means over its samples, exact
(`statistics.client_statistics`) or through dp-dm's release (`private.private_statistics`,
with the mechanism's record); the server aggregates them by counts, distils the global
summary (`stats_server.distil_from_statistics`) and trains the evaluated model on it, as
the summary scheme trains on its union.
"""

from __future__ import annotations

import logging

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.common.logger import log as flwr_log

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.train import TrainConfig
from datadistill_apps.federated import cache, private, server, statistics, stats_server
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.privacy import noise

QUERY = "query.statistics"
POOL = "pool"
STATS = "statistics"
META = "meta"
PRIVACY = "privacy"


def pool_to_record(
    pool: statistics.PoolDescription, privacy: private.ClientPrivacy | None = None
) -> RecordDict:
    arrays = ArrayRecord({k: v.contiguous() for k, v in pool.tensors().items()})
    meta = {"arch": pool.arch, "dsa-strategy": pool.dsa_strategy, "sample-rate": pool.sample_rate}
    if privacy is not None:
        meta |= {"client-epsilon": privacy.epsilon, "client-delta": privacy.delta,
                 "client-clip": privacy.clip}  # fmt: skip
    return RecordDict({POOL: arrays, META: ConfigRecord(meta)})


def record_to_privacy(content: RecordDict) -> private.ClientPrivacy | None:
    """The budget the server asks each client to spend; None: an exact upload."""
    meta = content[META]
    if "client-epsilon" not in meta:
        return None
    return private.ClientPrivacy(
        float(meta["client-epsilon"]), float(meta["client-delta"]), float(meta["client-clip"])
    )


def record_to_pool(content: RecordDict) -> statistics.PoolDescription:
    if POOL not in content or META not in content:
        raise DistillError(f"the server's query lacks '{POOL}'/'{META}' records; is it ours?")
    t = content[POOL].to_torch_state_dict()
    meta = content[META]
    return statistics.PoolDescription(
        arch=str(meta["arch"]),
        dsa_strategy=str(meta["dsa-strategy"]),
        seeds=t["pool_seeds"],
        ops=t.get("pool_ops"),
        values=t.get("pool_values"),
        sample_rate=float(meta["sample-rate"]),
    )


def stats_to_record(
    stats: statistics.ClassStatistics, *, partition_id: int, privacy: dict | None = None
) -> RecordDict:
    names = ("counts", "member_counts", "means")
    arrays = ArrayRecord({k: getattr(stats, k).contiguous() for k in names})
    meta = ConfigRecord({"partition-id": partition_id, "examples": float(stats.counts.sum())})
    out = {STATS: arrays, META: meta}
    if privacy is not None:
        out[PRIVACY] = ConfigRecord(privacy)
    return RecordDict(out)


def record_to_stats(content: RecordDict) -> statistics.ClassStatistics:
    if STATS not in content:
        raise DistillError(f"a reply lacks the '{STATS}' record; is the client ours?")
    t = content[STATS].to_torch_state_dict()
    return statistics.ClassStatistics(
        counts=t["counts"], member_counts=t["member_counts"], means=t["means"]
    )


def client_upload(
    msg: Message, *, pid: int, data: Dataset, rows: torch.Tensor, device
) -> tuple[statistics.ClassStatistics, dict | None]:
    """A client's statistics under the broadcast pool, through dp-dm's release when the
    server asks for a budget (the noise from a secret seed); (upload, mechanism's record)."""
    pool = record_to_pool(msg.content)
    privacy = record_to_privacy(msg.content)
    if privacy is None:
        return statistics.client_statistics(data, rows, pool, partition=pid, device=device), None
    stats, record = private.private_statistics(
        data, rows, pool, privacy, partition=pid, generator=noise.generator(-1), device=device
    )
    return stats, record | {"noise": noise.mode(-1, private=True)}


def one_round(grid, nodes, cfg: FedConfig, data: Dataset, device) -> tuple[dict, torch.nn.Module]:
    """Broadcast the pool, aggregate the replies, distil and train; (report, trained net)."""
    pool = statistics.describe_pool(
        members=cfg.pool,
        seed=cfg.seed,
        num_classes=data.spec.num_classes,
        arch=cfg.arch,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else "",
        sample_rate=sample_rate(cfg, data),
    )
    privacy = client_privacy(cfg)
    ask = pool_to_record(pool, privacy)
    messages = [Message(ask, dst_node_id=n, message_type=QUERY) for n in nodes]
    replies = [r for r in grid.send_and_receive(messages, timeout=cfg.timeout) if not r.has_error()]
    uploads = [record_to_stats(r.content) for r in replies]
    received = sorted(int(r.content[META]["partition-id"]) for r in replies)
    mechanisms = {
        int(r.content[META]["partition-id"]): dict(r.content[PRIVACY])
        for r in replies
        if PRIVACY in r.content
    }
    total = statistics.aggregate(uploads)
    summary = stats_server.distil_from_statistics(
        data.spec,
        pool,
        total,
        ipc=cfg.ipc,
        iterations=cfg.iterations or None,
        seed=cfg.seed,
        device=device,
        overrides={"lr_img": cfg.server_lr},
        out_dir=cache.server_run_folder(cfg, total),
    )
    flwr_log(
        logging.INFO,
        "server: %d statistics uploads -> %d images; training %s (%d epochs)",
        len(uploads), summary.n, cfg.arch, cfg.epochs,
    )  # fmt: skip
    config = TrainConfig(epochs=cfg.epochs, dsa=cfg.dsa)
    net, acc = server.train_on_union(
        [summary], data, arch=cfg.arch, config=config, seed=cfg.seed, device=device
    )
    sent = grid.accounting.as_dict()
    report = {
        "accuracy": acc,
        "summary": server.keep_training_set([summary], cfg, data),
        "images": summary.n,
        "stored_bytes": int(summary.stored_bytes),
        "received": received,
        "pool": pool.size,
        "sample_rate": pool.sample_rate,
        "client_privacy": {str(k): v for k, v in sorted(mechanisms.items())},
        "statistics_bytes": {k: sent[k] for k in ("bytes_up", "bytes_down", "bytes_total")},
    }
    return report, net


def client_privacy(cfg: FedConfig) -> private.ClientPrivacy | None:
    """The budget every client spends on its upload; None for an exact upload."""
    if cfg.client_epsilon > 0:
        return private.ClientPrivacy(cfg.client_epsilon, cfg.client_delta, cfg.client_clip)
    return None


def sample_rate(cfg: FedConfig, data: Dataset) -> float:
    """`cfg.sample_rate`, or for 0 the rule of `statistics.default_sample_rate` with DM's
    batch_real for the dataset and the training set's size (the server loads the dataset)."""
    if cfg.sample_rate > 0:
        return cfg.sample_rate
    return statistics.default_sample_rate(
        batch_real=stats_server.dm_batch_real(data.spec),
        num_classes=data.spec.num_classes,
        examples=len(data.y_train),
    )
