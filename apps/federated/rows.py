"""Result rows (datadistill.results schema) from a federated run's report.

One row for a summary run; one row per evaluated round for a FedAvg run, with the bytes
communicated up to that round (the experiment reads rounds 1, 5 and 20 from them) and the
partitions whose update that round lacked (a round without them is not full FedAvg). A
statistics run gives one row for its upload (the pool down, the statistics up) and, after a
warm start, one per FedAvg round with the bytes of every round so far, its own included;
its rows carry the sample rate and, for a private upload, the clients' mechanism (epsilon
from Opacus, delta, sigma, clip norm C), from which anyone can recompute epsilon.
"""

from __future__ import annotations

import os

from datadistill.results import command_line


def _base(report: dict) -> dict:
    cfg = report["config"]
    return {
        "dataset": cfg["dataset"],
        "arch": cfg["arch"],
        "runs": 1,
        "acc_std": 0.0,
        "sec_per_iter": None,
        "peak_mem_mb": None,
        "command": command_line(),
        "seed": cfg["seed"],
        "alpha": cfg["alpha"],
        "clients": cfg["clients"],
        "missing_clients": report["missing_clients"],
        "wall_seconds": report["wall_seconds"],
        "device": cfg["device"],
    }


def cited(report: dict) -> dict:
    """The summary the server trained on, relative to the working folder (the repository
    root for experiments; `results.append_rows` adds its sha256), when it was kept."""
    kept = report.get("summary")
    return {"summary": os.path.relpath(kept)} if kept else {}


def _partitioning(cfg: dict) -> str:
    return f"alpha={cfg['alpha']:g}" if cfg["alpha"] > 0 else "iid"


def rows_from_report(report: dict) -> list[dict]:
    """Result rows: one for a summary run, one per round for FedAvg."""
    cfg = report["config"]
    if cfg["mode"] == "statistics":
        return rows_from_statistics(report)
    if cfg["mode"] == "summary":
        return [
            _base(report)
            | {
                "method": cfg["method"],
                "ipc": cfg["ipc"],
                "iterations": cfg["iterations"],
                "acc_mean": report["accuracy"],
                "images": report["images"],
                "stored_bytes": report["stored_bytes"],
                "eval_epochs": cfg["epochs"],
                "variant": f"summary,{_partitioning(cfg)},clients={cfg['clients']}",
                "rounds": report["rounds"],
                "bytes_up": report["bytes_up"],
                "bytes_down": report["bytes_down"],
                "bytes_total": report["bytes_total"],
            }
            | cited(report)
        ]
    out = []
    for key, point in sorted(report["per_round"].items(), key=lambda kv: int(kv[0])):
        r = int(key)
        out.append(
            _base(report)
            | {
                "method": "fedavg",
                "ipc": 0,
                "iterations": r,
                "acc_mean": point["accuracy"],
                "images": None,
                "stored_bytes": None,
                "eval_epochs": cfg["local-epochs"],
                "variant": f"fedavg,{_partitioning(cfg)},clients={cfg['clients']},rounds={r}",
                "rounds": r,
                "bytes_up": point["bytes_up"],
                "bytes_down": point["bytes_down"],
                "bytes_total": point["bytes_up"] + point["bytes_down"],
                # reports from before per-round accounting: the run's missing partitions
                "missing_clients": point.get("missing_clients", report["missing_clients"]),
            }
        )
    return out


def rows_from_statistics(report: dict) -> list[dict]:
    """The statistics row, then the warm-started FedAvg rounds' rows, if any."""
    cfg = report["config"]
    q = report["sample_rate"]
    mechanism = privacy_fields(report)
    where = (
        f"{_partitioning(cfg)},clients={cfg['clients']},pool={cfg['pool']},"
        f"server_lr={cfg['server-lr']:g},q={q:.4g}"
    )
    if mechanism:
        where += f",client_epsilon={mechanism['client_epsilon']:.3g}"
    base = _base(report) | mechanism | {
        "ipc": cfg["ipc"], "pool": cfg["pool"], "server_lr": cfg["server-lr"], "sample_rate": q,
    }  # fmt: skip
    sent = report["statistics_bytes"]
    out = [
        base
        | {
            "method": "dm-statistics",
            "iterations": cfg["iterations"],
            "acc_mean": report["accuracy"],
            "images": report["images"],
            "stored_bytes": report["stored_bytes"],
            "eval_epochs": cfg["epochs"],
            "variant": f"statistics,{where}",
            "rounds": 1,
            "bytes_up": sent["bytes_up"],
            "bytes_down": sent["bytes_down"],
            "bytes_total": sent["bytes_total"],
        }
        | cited(report)
    ]
    per_round = report.get("warm_fedavg", {}).get("per_round", {})
    for key, point in sorted(per_round.items(), key=lambda kv: int(kv[0])):
        r = int(key)
        out.append(
            base
            | {
                "method": "fedavg-warm",
                "iterations": r,
                "acc_mean": point["accuracy"],
                "images": None,
                "stored_bytes": None,
                "eval_epochs": cfg["local-epochs"],
                "variant": f"fedavg-warm,{where},server_iterations={cfg['iterations']},rounds={r}",
                "rounds": r + 1,  # the statistics round, then r FedAvg rounds
                "bytes_up": point["bytes_up"],
                "bytes_down": point["bytes_down"],
                "bytes_total": point["bytes_up"] + point["bytes_down"],
                "missing_clients": point["missing_clients"],
            }
        )
    return out


def privacy_fields(report: dict) -> dict:
    """The clients' mechanism as row fields (every client runs the same one); {} if exact."""
    per_client = report["client_privacy"]
    if not per_client:
        return {}
    first = per_client[min(per_client, key=int)]
    return {
        "client_epsilon": first["epsilon"],
        "client_delta": first["delta"],
        "noise_multiplier": first["noise_multiplier"],
        "clip_norm": first["clip_norm"],
        "accountant": first["accountant"],
    }
