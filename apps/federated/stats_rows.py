"""Result rows (datadistill.results schema) from a statistics-scheme run's report.

One row for the statistics upload (its bytes are the one round's: the pool down, the
statistics up), and, after a warm start, one row per FedAvg round with the bytes of every
round so far, the statistics round included.
"""

from __future__ import annotations

from datadistill.results import command_line


def rows_from_statistics(report: dict) -> list[dict]:
    """The statistics row, then the warm-started FedAvg rounds' rows, if any."""
    cfg = report["config"]
    split = f"alpha={cfg['alpha']:g}" if cfg["alpha"] > 0 else "iid"
    where = f"{split},clients={cfg['clients']},pool={cfg['pool']},server_lr={cfg['server-lr']:g}"
    base = {
        "dataset": cfg["dataset"],
        "arch": cfg["arch"],
        "ipc": cfg["ipc"],
        "runs": 1,
        "acc_std": 0.0,
        "sec_per_iter": None,
        "peak_mem_mb": None,
        "command": command_line(),
        "seed": cfg["seed"],
        "alpha": cfg["alpha"],
        "clients": cfg["clients"],
        "pool": cfg["pool"],
        "server_lr": cfg["server-lr"],
        "wall_seconds": report["wall_seconds"],
        "device": cfg["device"],
    }
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
            "missing_clients": report["missing_clients"],
        }
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
