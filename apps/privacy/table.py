"""Privacy rows as tables: private releases against non-private ones, and membership audits.

For `distill privacy` and `distill report` (terminal) and `experiments/privacy_fmnist.py`
(its note): one function from result rows to text, so all print the same figures.
"""

from __future__ import annotations

import math

from datadistill.results import fmt_acc, table
from datadistill_apps.privacy import noise


def privacy_of(row: dict) -> dict:
    """The mechanism a row records: a summary's `privacy` metadata, or DP-SGD's own fields."""
    if row.get("privacy"):
        return row["privacy"]
    if row["method"] == "dp-sgd":
        keys = ("epsilon", "delta", "noise_multiplier", "sample_rate")
        return {k: row.get(k) for k in keys} | {"private": True, "steps": row["iterations"]}
    return {}


def budget(row: dict) -> float:
    """The epsilon asked for: the variant's `epsilon=X`, else the mechanism's; inf if none."""
    variant = str(row.get("variant", ""))
    if variant.startswith("epsilon="):
        return float(variant.split("=", 1)[1])
    value = privacy_of(row).get("epsilon_budget")
    return math.inf if value is None else float(value)


def _spent(row: dict) -> str:
    """'-' where the row does not record its mechanism, 'inf' for a release without noise."""
    p = privacy_of(row)
    if not p:
        return "-"
    return "inf" if p.get("epsilon") is None else f"{p['epsilon']:.3f}"


def _marker(row: dict) -> str:
    p = privacy_of(row)
    return (noise.marker({**p, **row}) if p else None) or "-"


def _num(v, fmt: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


TRAINING = [
    ("method", lambda r: r["method"]),
    ("dataset", lambda r: r["dataset"]),
    ("IPC", lambda r: str(r["ipc"]) if r["ipc"] else "-"),
    ("epsilon budget", lambda r: f"{budget(r):g}"),
    ("epsilon spent", _spent),
    ("sigma", lambda r: _num(privacy_of(r).get("noise_multiplier"), ".3g")),
    ("sample rate", lambda r: _num(privacy_of(r).get("sample_rate"), ".3g")),
    ("steps", lambda r: str(privacy_of(r).get("steps", r["iterations"]))),
    ("accuracy %", fmt_acc),
    ("runs", lambda r: str(r["runs"])),
    ("noise", _marker),
]
AUDIT = [
    ("target", lambda r: r["target"]),
    ("dataset", lambda r: r["dataset"]),
    ("test accuracy %", lambda r: f"{100 * r['acc_mean']:.2f}"),
    ("loss AUC", lambda r: _num(r.get("loss_auc"))),
    ("loss TPR@1%FPR", lambda r: _num(r.get("loss_tpr_at_1pct_fpr"))),
    ("LiRA AUC", lambda r: _num(r.get("lira_auc"))),
    ("LiRA TPR@1%FPR", lambda r: _num(r.get("lira_tpr_at_1pct_fpr"))),
    ("noise", _marker),
]


def is_audit(row: dict) -> bool:
    return "loss_auc" in row


def is_private(row: dict) -> bool:
    return not is_audit(row) and bool(privacy_of(row))


def training(rows: list[dict]) -> str:
    """Private and non-private training rows side by side, by method then epsilon (inf last)."""
    return table(sorted(rows, key=lambda r: (r["method"], budget(r))), TRAINING)


def audits(rows: list[dict]) -> str:
    """Membership-inference audits: 0.5 AUC is a guess, higher is leakage."""
    return table(rows, AUDIT)
