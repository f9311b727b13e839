"""The NAS study as a Markdown table: each proxy's rank agreement with its interval, and cost.

For `experiments/report.py` (README) and `experiments/nas_fmnist.py` (terminal): one
function from result rows to text, so both print the same figures. Rows without bootstrap
intervals (written before they existed) show their point estimates alone.
"""

from __future__ import annotations

import re

from datadistill.results import table


def _with_interval(row: dict, key: str, digits: int = 2) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    ci = row.get(f"{key}_ci")
    text = f"{value:.{digits}f}"
    return text if not ci else f"{text} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def kind(row: dict) -> str:
    """summary, random-subset, cheap-train or zero-cost, without the lr/augmentation tags."""
    return re.sub(r"(-lr[0-9.e+-]+)?(-noaug)?$", "", row["variant"].split("=")[1])


def learning_rate(row: dict) -> str:
    """The proxy's lr from its setting label (C8-N1-e100-lr0.01-b256-dsa); '-' if it trains none."""
    part = next((p for p in row.get("setting", "").split("-") if p.startswith("lr")), None)
    return part[2:] if part else "-"


def augmentation(row: dict) -> str:
    """dsa or none for a proxy that trains; '-' for one that does not."""
    if kind(row) in ("zero-cost", "truth-seed"):
        return "-"
    return "dsa" if row.get("setting", "").endswith("-dsa") else "none"


def run_on(row: dict) -> str:
    device = str(row.get("device", "cpu"))
    return device[device.find("NVIDIA ") + 7 : -1] if "NVIDIA " in device else device


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


COLUMNS = [
    ("proxy", lambda r: r["method"]),
    ("kind", kind),
    ("IPC", lambda r: str(r["ipc"]) if r["ipc"] else "-"),
    ("lr", learning_rate),
    ("aug", augmentation),
    ("Spearman [95% CI]", lambda r: _with_interval(r, "spearman")),
    ("Kendall [95% CI]", lambda r: _with_interval(r, "kendall")),
    ("top-5 [95% CI]", lambda r: _with_interval(r, "top5", 1)),
    ("s/cell", lambda r: f"{r['proxy_seconds']:.3g}"),
    ("run on", run_on),
    ("cost / truth", lambda r: _ratio(r.get("cost_ratio"))),
    ("seen / truth", lambda r: _ratio(r.get("images_seen_ratio"))),
]
ORDER = {"truth-seed": 0, "zero-cost": 1, "cheap-train": 2, "random-subset": 3, "summary": 4}


def markdown(rows: list[dict]) -> str:
    """Every scored proxy row (those with a Spearman), zero-cost first, then by rho."""
    rows = [r for r in rows if "spearman" in r]
    if not rows:
        return "_No results yet._"
    rows = sorted(rows, key=lambda r: (r["dataset"], ORDER.get(kind(r), 9), -(r["spearman"] or -2)))
    return table(rows, COLUMNS)
