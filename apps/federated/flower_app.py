"""The thin Flower layer (Message API, Flower 1.41): a ClientApp and a ServerApp.

Summary mode: the server sends one `query.summary` message to every node; each client
distils its partition (`local.distil_partition`) and replies with the summary as
records; the server trains on the union (`server.train_on_union`). FedAvg mode runs
Flower's own `FedAvg` strategy on the same partitions, model and training loop.
Statistics mode (`stats_flower`) uploads DM's class statistics once instead of summaries,
optionally followed by FedAvg warm-started from the model trained on the server's summary.
A `CountingGrid` around the Grid measures the payload bytes each way per client.

`flwr run` loads `client_app` and `server_app` below and reads settings from the run
config; the simulation wrapper builds apps bound to a `FedConfig` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.logger import log as flwr_log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from datadistill import data as datasets
from datadistill.atomic import write_bytes
from datadistill.distill import resolve_device
from datadistill.train import TrainConfig
from datadistill_apps.federated import cache, local, private, records, server, stats_flower
from datadistill_apps.federated.config import FedConfig
from datadistill_apps.federated.partition import partition

log = logging.getLogger(__name__)
QUERY = "query.summary"


@functools.lru_cache(maxsize=2)
def _data_and_parts(dataset: str, clients: int, alpha: float, seed: int):
    """Every process computes the same seeded partitions and keeps its own."""
    data = datasets.load(dataset)
    parts = partition(data.y_train, num_partitions=clients, alpha=alpha or None, seed=seed)
    return data, parts


def _partition(cfg: FedConfig, context: Context):
    pid = int(context.node_config["partition-id"])
    n = int(context.node_config.get("num-partitions", cfg.clients))
    if n != cfg.clients:
        raise RuntimeError(f"node has num-partitions={n} but the run has clients={cfg.clients}")
    if pid in cfg.failing:
        raise RuntimeError(f"partition {pid} fails on purpose (fail-clients={cfg.fail_clients})")
    data, parts = _data_and_parts(cfg.dataset, cfg.clients, cfg.alpha, cfg.partition_seed)
    return pid, data, parts[pid]


def make_client_app(bound: FedConfig | None = None) -> ClientApp:
    """A ClientApp; `bound` fixes its config (simulation), else the run config is read."""
    app = ClientApp()

    @app.query("summary")
    def upload(msg: Message, context: Context) -> Message:
        cfg = bound or FedConfig.from_run_config(context.run_config)
        pid, data, rows = _partition(cfg, context)
        started = time.monotonic()
        summary, hit = cache.cached(
            cfg,
            pid,
            lambda: local.distil_partition(
                data,
                rows,
                method=cfg.method,
                ipc=cfg.ipc,
                iterations=cfg.iterations or None,
                seed=cfg.seed * 1000 + pid,
                device=resolve_device(cfg.device),
                out_dir=cache.run_folder(cfg, pid),
            ),
        )
        flwr_log(
            logging.INFO,
            "client %d: %d examples -> %d images (%d classes distilled) %s %.0f s",
            pid, len(rows), summary.n, len(summary.extra["distilled_classes"]),
            "loaded from the cache in" if hit else "in", time.monotonic() - started,
        )  # fmt: skip
        return Message(records.summary_to_record(summary, partition_id=pid), reply_to=msg)

    @app.query("statistics")
    def statistics_upload(msg: Message, context: Context) -> Message:
        cfg = bound or FedConfig.from_run_config(context.run_config)
        pid, data, rows = _partition(cfg, context)
        device = resolve_device(cfg.device)
        started = time.monotonic()
        (stats, record), hit = cache.cached_statistics(
            cfg,
            pid,
            lambda: stats_flower.client_upload(msg, pid=pid, data=data, rows=rows, device=device),
        )
        flwr_log(
            logging.INFO,
            "client %d: statistics of %d examples under %d embedders%s %s %.0f s",
            pid, len(rows), cfg.pool, f", epsilon {record['epsilon']:.3g}" if record else "",
            "loaded from the cache in" if hit else "in", time.monotonic() - started,
        )  # fmt: skip
        content = stats_flower.stats_to_record(stats, partition_id=pid, privacy=record)
        return Message(content, reply_to=msg)

    @app.train()
    def fedavg_train(msg: Message, context: Context) -> Message:
        cfg = bound or FedConfig.from_run_config(context.run_config)
        pid, data, rows = _partition(cfg, context)
        device = resolve_device(cfg.device)
        net = server.build_net(cfg.arch, data, seed=cfg.seed, device=device)
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        config = msg.content["config"]
        rnd = int(config["server-round"]) + int(config.get("rounds-before", 0))  # resumed
        local.local_fit(
            net,
            data,
            rows,
            epochs=cfg.local_epochs,
            batch_size=cfg.local_batch,
            seed=cfg.seed * 1000 + pid * 100 + rnd,
        )
        metrics = MetricRecord({"num-examples": len(rows), "partition-id": pid})
        content = RecordDict({"arrays": records.state_dict_record(net), "metrics": metrics})
        return Message(content, reply_to=msg)

    return app


class CountingGrid:
    """Delegates to a Grid and adds every message's payload bytes to an Accounting."""

    def __init__(self, grid: Grid, accounting: server.Accounting) -> None:
        self._grid, self.accounting = grid, accounting
        self.partition_of: dict[int, int] = {}  # node id -> partition id, from replies
        self.failed_nodes: set[int] = set()
        self.last_answered: list[int] = []  # partitions with a good reply to the last call

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout: float | None = None):
        messages = list(messages)
        for m in messages:
            self.accounting.add(m.metadata.dst_node_id, down=records.payload_bytes(m.content))
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        sent = {m.metadata.dst_node_id for m in messages}
        answered, good = set(), set()
        for r in replies:
            node = r.metadata.src_node_id
            if node not in sent:  # the SuperLink answering for a node it lost (a killed
                continue  # SuperNode): the node is counted below, as one that did not answer
            answered.add(node)
            if r.has_error():
                self.failed_nodes.add(node)
                log.warning("node %d failed: %s", node, r.error.reason)
                continue
            self.accounting.add(node, up=records.payload_bytes(r.content))
            pid = records.partition_of(r)
            if pid is not None:
                self.partition_of[node] = pid
                good.add(pid)
        self.failed_nodes |= {m.metadata.dst_node_id for m in messages} - answered
        if messages:  # an empty call (no evaluation round) keeps the last round's answer
            self.last_answered = sorted(good)
            self.accounting.rounds += 1
        return replies


def wait_for_nodes(grid: Grid, *, expected: int, timeout: float) -> list[int]:
    """Node ids once `expected` nodes are connected, or whoever is there at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= expected or time.monotonic() > deadline:
            return nodes
        time.sleep(0.5)


def preflight(cfg: FedConfig) -> None:
    """Refuse, before any client is asked, a request some client would refuse (a
    --client-delta not below 1/n of the smallest partition), so a run stops on that one line
    instead of finishing with every client missing."""
    privacy = stats_flower.client_privacy(cfg) if cfg.mode == "statistics" else None
    if privacy is not None:
        _, parts = _data_and_parts(cfg.dataset, cfg.clients, cfg.alpha, cfg.partition_seed)
        private.check_clients(privacy, [len(p) for p in parts])


def run_server(grid: Grid, cfg: FedConfig) -> dict:
    """The ServerApp's work, returned as a report dict (and written to `cfg.report`)."""
    preflight(cfg)
    data, _ = _data_and_parts(cfg.dataset, cfg.clients, cfg.alpha, cfg.partition_seed)
    device = resolve_device(cfg.device)
    accounting = server.Accounting(clients=cfg.clients)
    counting = CountingGrid(grid, accounting)
    nodes = wait_for_nodes(grid, expected=cfg.clients, timeout=min(cfg.timeout, 300))
    report = {"config": cfg.to_run_config(), "nodes": len(nodes)}
    if cfg.mode == "summary":
        report |= _one_shot(counting, nodes, cfg, data, device)
    elif cfg.mode == "statistics":
        part, net = stats_flower.one_round(counting, nodes, cfg, data, device)
        report |= part
        if cfg.warm_rounds:  # no cache: its key does not know the warm start
            warm = dataclasses.replace(cfg, rounds=cfg.warm_rounds, cache="")
            report["warm_fedavg"] = _fedavg(counting, warm, data, device, start=net)
    else:
        report |= _fedavg(counting, cfg, data, device)
    accounting.stop()
    # per-partition accounting where the replies named their partition
    by_pid = server.Accounting(clients=cfg.clients, rounds=accounting.rounds)
    for node in set(accounting.bytes_down) | set(accounting.bytes_up):
        key = counting.partition_of.get(node, f"node-{node}")  # a node that never replied
        by_pid.add(
            key, up=accounting.bytes_up.get(node, 0), down=accounting.bytes_down.get(node, 0)
        )
    by_pid.wall_seconds = accounting.wall_seconds
    by_pid.missing = sorted(set(range(cfg.clients)) - set(counting.partition_of.values()))
    report |= by_pid.as_dict()
    report["failed_nodes"] = sorted(counting.failed_nodes)
    if report["missing_clients"]:
        log.warning("finished without partitions %s", report["missing_clients"])
    if cfg.report:
        write_bytes(Path(cfg.report), json.dumps(report, indent=1).encode())
    return report


def _one_shot(grid: CountingGrid, nodes, cfg: FedConfig, data, device) -> dict:
    ask = RecordDict({"config": ConfigRecord({"ipc": cfg.ipc, "method": cfg.method})})
    messages = [Message(ask, dst_node_id=n, message_type=QUERY) for n in nodes]
    replies = grid.send_and_receive(messages, timeout=cfg.timeout)
    summaries = [
        records.record_to_summary(r.content, spec=data.spec) for r in replies if not r.has_error()
    ]
    config = TrainConfig(epochs=cfg.epochs, dsa=cfg.dsa)
    flwr_log(
        logging.INFO,
        "server: training %s on %d images from %d summaries (%d epochs)",
        cfg.arch, sum(s.n for s in summaries), len(summaries), cfg.epochs,
    )  # fmt: skip
    _, acc = server.train_on_union(
        summaries, data, arch=cfg.arch, config=config, seed=cfg.seed, device=device
    )
    return {
        "accuracy": acc,
        "summary": server.keep_training_set(summaries, cfg, data),
        "images": sum(s.n for s in summaries),
        "stored_bytes": sum(int(s.stored_bytes) for s in summaries),
        "received": sorted(s.extra["partition_id"] for s in summaries),
    }


def _fedavg(grid: CountingGrid, cfg: FedConfig, data, device, start=None) -> dict:
    """FedAvg from a fresh model, or from `start` (warm start); bytes count from the run's
    first message, so a warm start's rounds include the round that made `start`."""
    kept = cache.load_fedavg(cfg) if start is None else None
    net = start
    if net is None:
        net = server.build_net(cfg.arch, data, seed=cfg.seed, device=device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    done, curve = 0, {}
    if kept is not None:  # an interrupted run's last complete round (see cache.py)
        done, state, saved = kept
        done = min(done, cfg.rounds)
        net.load_state_dict(state)
        curve = {r: v for r, v in saved.items() if r <= done}
        flwr_log(logging.INFO, "FedAvg: going on from round %d (%s)", done, cache.fedavg_path(cfg))
    before = curve.get(done, {"bytes_up": 0, "bytes_down": 0})  # bytes of the kept rounds

    def central(rnd: int, arrays: ArrayRecord) -> MetricRecord | None:
        if rnd == 0:
            return None
        r = done + rnd
        net.load_state_dict(arrays.to_torch_state_dict())
        # this round's training replies came from the last send_and_receive (no evaluate)
        missing = sorted(set(range(cfg.clients)) - set(grid.last_answered))
        if missing:
            log.warning("FedAvg round %d: no update from partitions %s", r, missing)
        sent = grid.accounting.as_dict()
        curve[r] = {
            "accuracy": server.test_accuracy(net, x_test, y_test),
            "bytes_up": before["bytes_up"] + sent["bytes_up"],
            "bytes_down": before["bytes_down"] + sent["bytes_down"],
            "missing_clients": missing,
        }
        if cfg.cache and not any(v["missing_clients"] for v in curve.values()):  # all complete
            cache.save_fedavg(cfg, r, net.state_dict(), curve)
        flwr_log(logging.INFO, "FedAvg round %d: central test accuracy %.4f", r,
                 curve[r]["accuracy"])  # fmt: skip
        return MetricRecord({"accuracy": curve[r]["accuracy"]})

    if done < cfg.rounds:
        strategy = FedAvg(
            fraction_evaluate=0.0,
            min_train_nodes=1,
            min_evaluate_nodes=0,
            min_available_nodes=1,
        )
        strategy.start(
            grid=grid,
            initial_arrays=records.state_dict_record(net),
            num_rounds=cfg.rounds - done,
            timeout=cfg.timeout,
            train_config=ConfigRecord({"rounds-before": done}),  # clients' seeds: true round
            evaluate_fn=central,
        )
    # the final model is the last round's, which `central` has already tested (and a kept
    # run longer than `rounds` reports its round `rounds`, not the model it went on to)
    last = curve[max(curve)]["accuracy"] if curve else server.test_accuracy(net, x_test, y_test)
    return {
        "accuracy": last,
        "per_round": {str(k): v for k, v in sorted(curve.items())},
        "resumed_from_round": done,
    }


def _main(bound: FedConfig | None, sink: list | None):
    def main(grid: Grid, context: Context) -> None:
        cfg = bound or FedConfig.from_run_config(context.run_config)
        report = run_server(grid, cfg)
        if sink is not None:
            sink.append(report)

    return main


def make_server_app(bound: FedConfig | None = None, sink: list | None = None) -> ServerApp:
    """A ServerApp; `bound` fixes its config, `sink` receives the report (in process)."""
    app = ServerApp()
    app.main()(_main(bound, sink))
    return app


client_app = make_client_app()
server_app = make_server_app()
