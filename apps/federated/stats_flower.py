"""The statistics scheme on Flower's Message API: one round, class statistics up.

The server broadcasts the pool description (`statistics.describe_pool`) in one
`query.statistics` message; each client replies with its class counts and per-member
class means (`statistics.client_statistics`, through the privacy hook
`statistics.privatise`); the server aggregates them by counts, distils the global summary
(`stats_server.distil_from_statistics`) and trains the evaluated model on it, as the
summary scheme trains on its union.
"""

from __future__ import annotations

import logging

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.common.logger import log as flwr_log

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.train import TrainConfig
from datadistill_apps.federated import server, statistics, stats_server
from datadistill_apps.federated.config import FedConfig

QUERY = "query.statistics"
POOL = "pool"
STATS = "statistics"
META = "meta"


def pool_to_record(pool: statistics.PoolDescription) -> RecordDict:
    arrays = ArrayRecord({k: v.contiguous() for k, v in pool.tensors().items()})
    meta = ConfigRecord({"arch": pool.arch, "dsa-strategy": pool.dsa_strategy})
    return RecordDict({POOL: arrays, META: meta})


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
    )


def stats_to_record(stats: statistics.ClassStatistics, *, partition_id: int) -> RecordDict:
    arrays = ArrayRecord({"counts": stats.counts.contiguous(), "means": stats.means.contiguous()})
    meta = ConfigRecord({"partition-id": partition_id, "examples": int(stats.counts.sum())})
    return RecordDict({STATS: arrays, META: meta})


def record_to_stats(content: RecordDict) -> statistics.ClassStatistics:
    if STATS not in content:
        raise DistillError(f"a reply lacks the '{STATS}' record; is the client ours?")
    t = content[STATS].to_torch_state_dict()
    return statistics.ClassStatistics(counts=t["counts"], means=t["means"])


def upload(msg: Message, *, pid: int, data: Dataset, rows: torch.Tensor, device) -> Message:
    """The ClientApp's reply: its partition's statistics under the broadcast pool."""
    pool = record_to_pool(msg.content)
    stats = statistics.privatise(statistics.client_statistics(data, rows, pool, device=device))
    flwr_log(
        logging.INFO,
        "client %d: statistics of %d examples under %d embedders",
        pid, len(rows), pool.size,
    )  # fmt: skip
    return Message(stats_to_record(stats, partition_id=pid), reply_to=msg)


def one_round(grid, nodes, cfg: FedConfig, data: Dataset, device) -> tuple[dict, torch.nn.Module]:
    """Broadcast the pool, aggregate the replies, distil and train; (report, trained net)."""
    pool = statistics.describe_pool(
        members=cfg.pool,
        seed=cfg.seed,
        num_classes=data.spec.num_classes,
        arch=cfg.arch,
        dsa_strategy=data.spec.dsa_strategy if cfg.dsa else "",
    )
    ask = pool_to_record(pool)
    messages = [Message(ask, dst_node_id=n, message_type=QUERY) for n in nodes]
    replies = [r for r in grid.send_and_receive(messages, timeout=cfg.timeout) if not r.has_error()]
    uploads = [record_to_stats(r.content) for r in replies]
    received = sorted(int(r.content[META]["partition-id"]) for r in replies)
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
        "images": summary.n,
        "stored_bytes": int(summary.stored_bytes),
        "received": received,
        "pool": pool.size,
        "statistics_bytes": {k: sent[k] for k in ("bytes_up", "bytes_down", "bytes_total")},
    }
    return report, net
