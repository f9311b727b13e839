"""Continual's mean rows: the population std every row uses, and a command that reruns them."""

import statistics

from datadistill_apps.continual.rows import aggregate


def _order_row(seed: int, acc: float, command: str) -> dict:
    return {
        "method": "dm", "strategy": "distill-recall", "memory_per_class": 10,
        "dataset": "digits", "arch": "convnet", "iterations": 5, "ipc": 10, "seed": seed,
        "runs": 1, "acc_mean": acc, "acc_std": 0.0, "forgetting_mean": 0.1 * seed,
        "forgetting_std": 0.0, "curve_mean": [acc, acc], "seconds": 1.0, "command": command,
    }  # fmt: skip


def test_mean_rows_use_the_population_std_and_name_every_command_that_made_them():
    accs = [0.5, 0.7, 0.9]
    commands = ["python a.py --orders 0", "python a.py --orders 1", "python a.py --orders 1"]
    pairs = enumerate(zip(accs, commands, strict=True))
    (row,) = aggregate([_order_row(s, a, c) for s, (a, c) in pairs])
    assert row["runs"] == 3
    assert row["acc_std"] == statistics.pstdev(accs) != statistics.stdev(accs)
    assert row["command"] == "python a.py --orders 0 && python a.py --orders 1"


def test_orders_trained_for_other_epochs_make_their_own_mean_row():
    rows = [{**_order_row(s, 0.5 + 0.1 * s, "c"), "epochs": e} for s in (0, 1) for e in (1, 5)]
    means = aggregate(rows)
    assert sorted(r["epochs"] for r in means) == [1, 5]
    assert all(r["runs"] == 2 for r in means)
