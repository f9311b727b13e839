"""Fairness scores after DD-Ranking, computed from result rows on hard labels.

Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset Distillation", arXiv 2505.13300
(2025). A summary's accuracy alone mixes what its images hold with how it is evaluated; two
differences under one protocol separate them:

- IOR, improvement over random = acc(summary) - acc(random real images, same number, same
  evaluation): what distilling bought over not distilling;
- HLR, hard-label recovery = acc(full training set) - acc(summary), both trained by the same
  protocol: the gap left (lower is better);
- LRS, label-robust score = 100 (e^a - e^-1) / (e - e^-1) with a = w IOR - (1 - w) HLR,
  accuracies as fractions (a in [-1, 1], LRS in [0, 100]); w = 0.5 on their leaderboard.

Rows are this library's: the random baseline is the `random` method at the same IPC, the
full-data model a row of method `FULL_DATA` (trained once per protocol).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FULL_DATA = "full-data"


def ior(syn: float, random: float) -> float:
    return syn - random


def hlr(full: float, syn: float) -> float:
    return full - syn


def lrs(ior_value: float, hlr_value: float, w: float = 0.5) -> float:
    """The label-robust score in [0, 100] (see the module docstring)."""
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"w must be in [0, 1], got {w}")
    a = w * ior_value - (1 - w) * hlr_value
    return 100 * (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def scores(
    cells: Mapping[tuple[str, int], dict], full: dict | None, w: float = 0.5
) -> dict[tuple[str, int], dict]:
    """(method, ipc) -> {"ior", "hlr", "lrs"} (None where a reference row is missing), for
    the rows `cells` holds (one per method and IPC, one protocol) and the full-data row."""
    out = {}
    for (method, ipc), row in cells.items():
        if method in ("random", FULL_DATA):
            continue
        rnd = cells.get(("random", ipc))
        i = ior(row["acc_mean"], rnd["acc_mean"]) if rnd else None
        h = hlr(full["acc_mean"], row["acc_mean"]) if full else None
        out[method, ipc] = {
            "ior": i,
            "hlr": h,
            "lrs": lrs(i, h, w) if i is not None and h is not None else None,
        }
    return out


def table(
    cells: Mapping[tuple[str, int], dict],
    full: dict | None,
    ipcs: list[int],
    learnt_labels: frozenset[str] = frozenset(),
) -> str:
    """Markdown: method x IPC with IOR / HLR in points and LRS; methods that learn labels
    (`learnt_labels`, or rows saying so) marked, as their scores are not on hard labels."""
    found = scores(cells, full)
    methods = sorted({m for m, i in found if i in ipcs})
    head = ["method"] + [f"IPC {i} {c}" for i in ipcs for c in ("IOR", "HLR", "LRS")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        rows = [cells[m, i] for i in ipcs if (m, i) in cells]
        soft = m in learnt_labels or any(r.get("labels") == "soft" for r in rows)
        out = [f"{m} (learnt labels)" if soft else m]
        for i in ipcs:
            s = found.get((m, i), {})
            out += [_points(s.get("ior")), _points(s.get("hlr")), _score(s.get("lrs"))]
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def _points(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.2f}"


def _score(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
