"""Federated rows as tables: each run in percent, and one-shot summary upload vs FedAvg.

For `distill federated` and `distill report` (terminal) and `experiments/federated_fmnist.py`
(its note): one function from result rows to text, so all print the same figures.
"""

from __future__ import annotations

from datadistill import results
from datadistill.results import fmt_acc, fmt_bytes, table

COLUMNS = [
    ("run", lambda r: "FedAvg" if r["method"] == "fedavg" else f"one-shot {r['method']}"),
    ("dataset", lambda r: r["dataset"]),
    ("partition", lambda r: f"alpha={r['alpha']:g}" if r["alpha"] > 0 else "iid"),
    ("clients", lambda r: str(r["clients"])),
    ("IPC", lambda r: str(r["ipc"]) if r["ipc"] else "-"),
    ("rounds", lambda r: str(r["rounds"])),
    ("acc %", fmt_acc),
    ("bytes up", lambda r: fmt_bytes(r["bytes_up"])),
    ("bytes total", lambda r: fmt_bytes(r["bytes_total"])),
    ("missing", lambda r: ",".join(map(str, r["missing_clients"])) or "-"),
]


def runs(rows: list[dict]) -> str:
    """One line per run (per round for FedAvg), accuracy in percent."""
    return table(rows, COLUMNS)


def is_federated(row: dict) -> bool:
    return "bytes_total" in row and "clients" in row


def alphas(rows):
    return sorted({r["alpha"] for r in rows})


def complete_rounds(rows: list[dict], alpha: float) -> list[dict]:
    """FedAvg's rounds at `alpha` up to the first that lacked a client's update.

    A round without every update is not the baseline any more (after a lost client the
    model may not move at all), so neither the table nor the comparison reads past it.
    """
    fed = sorted(
        (r for r in rows if r["alpha"] == alpha and r["method"] == "fedavg"),
        key=lambda r: r["rounds"],
    )
    cut = next((i for i, r in enumerate(fed) if r["missing_clients"]), len(fed))
    return fed[:cut]


def shown_rounds(fed: list[dict]) -> set[int]:
    """The rounds the table and plot label: 1, 5 and the last."""
    return {1, 5, max((r["rounds"] for r in fed), default=1)}


def matching_round(fed: list[dict], one: dict) -> str:
    """Where FedAvg first reaches the one-shot accuracy, and its bytes there."""
    fed = sorted(fed, key=lambda r: r["rounds"])
    hit = next((r for r in fed if r["acc_mean"] >= one["acc_mean"]), None)
    if hit is None:
        return f"FedAvg never reaches {100 * one['acc_mean']:.2f}% in {fed[-1]['rounds']} rounds."
    before = [r["rounds"] for r in fed if r["rounds"] < hit["rounds"]]
    gap = before and before[-1] != hit["rounds"] - 1  # rounds in between were not recorded
    where = (
        f"between rounds {before[-1] + 1} and {hit['rounds']}"
        if gap
        else f"at round {hit['rounds']}"
    )
    ratio = hit["bytes_total"] / max(one["bytes_total"], 1)
    return (
        f"FedAvg first reaches it {where} ({100 * hit['acc_mean']:.2f}%, "
        f"{results.fmt_bytes(hit['bytes_total'])}: {ratio:.0f}x the one-shot's bytes)."
    )


def summary_name(row: dict) -> str:
    """`dm IPC 10, 2,000 it`: a one-shot row's method, size and budget (rows of several
    budgets stand side by side)."""
    it = f", {row['iterations']:,} it" if row.get("iterations") else ""
    return f"{row['method']} IPC {row['ipc']}{it}"


def comparison(rows: list[dict]) -> str:
    """Does the one-shot summary reach FedAvg's last-round accuracy with >= 10x fewer bytes?"""
    lines = ["# One-shot summary upload vs FedAvg", ""]
    lines.append("| alpha | run | rounds | accuracy | total bytes | missing |")
    lines.append("|---|---|---|---|---|---|")
    complete = {a: complete_rounds(rows, a) for a in alphas(rows)}
    # the rounds to show, only from the complete prefix
    shown = {a: shown_rounds(fed) & {r["rounds"] for r in fed} for a, fed in complete.items()}
    for r in sorted(rows, key=lambda r: (r["alpha"], r["method"] != "fedavg", r["rounds"])):
        if r["method"] == "fedavg" and r["rounds"] not in shown[r["alpha"]]:
            continue
        name = "FedAvg" if r["method"] == "fedavg" else summary_name(r)
        lines.append(
            f"| {r['alpha']:g} | {name} | {r['rounds']} | {100 * r['acc_mean']:.2f} | "
            f"{results.fmt_bytes(r['bytes_total'])} | {r['missing_clients'] or '-'} |"
        )
    lines.append("")
    for alpha in alphas(rows):
        fed = complete[alpha]
        every = sorted(
            (r for r in rows if r["alpha"] == alpha and r["method"] == "fedavg"),
            key=lambda r: r["rounds"],
        )  # every[len(fed)] is the first lossy round
        if len(fed) < len(every):
            lines.append(
                f"- alpha={alpha:g}: FedAvg lost client updates from round "
                f"{every[len(fed)]['rounds']} on; read up to round "
                f"{fed[-1]['rounds'] if fed else 0} only."
            )
        one = [r for r in rows if r["alpha"] == alpha and r["method"] != "fedavg"]
        if not fed:
            continue
        last = fed[-1]
        for s in one:
            head = f"- alpha={alpha:g}, one-shot {summary_name(s)}: {100 * s['acc_mean']:.2f}%"
            if s["missing_clients"]:
                lines.append(f"{head} without clients {s['missing_clients']}: incomplete, rerun.")
                continue
            ratio = last["bytes_total"] / max(s["bytes_total"], 1)
            ok = s["acc_mean"] >= last["acc_mean"] and ratio >= 10
            lines.append(
                f"{head} with {ratio:.1f}x fewer bytes than FedAvg at {last['rounds']} rounds "
                f"({100 * last['acc_mean']:.2f}%): {'reached' if ok else 'not reached'}."
            )
            lines.append(f"  {matching_round(fed, s)}")
    return "\n".join(lines) + "\n"
