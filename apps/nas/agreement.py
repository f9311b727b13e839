"""How well a proxy's scores rank cells the way the ground truth does.

Spearman's rho and Kendall's tau (scipy.stats) over the common cells, and the overlap of
the two top-k sets, the quantities DC-BENCH reports for NAS on summaries (Cui et al.,
NeurIPS 2022, section 4.4). A proxy that gives every cell the same score has no ranking:
its correlations are NaN, not zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

from datadistill.errors import DistillError


@dataclass(frozen=True)
class Agreement:
    spearman: float
    kendall: float
    top_k: float  # |top-k(truth) & top-k(proxy)| / k
    k: int
    n: int


def top(scores: Mapping[str, float], k: int) -> set[str]:
    """The k best cells; ties broken by the architecture string, so the set is stable."""
    return {a for a, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]}


def agreement(truth: Mapping[str, float], proxy: Mapping[str, float], *, k: int = 5) -> Agreement:
    """Rank agreement of `proxy` with `truth` on the cells both scored."""
    common = sorted(set(truth) & set(proxy))
    if len(common) < 2:
        raise DistillError(f"need at least 2 cells scored by both, got {len(common)}")
    t = [truth[a] for a in common]
    p = [proxy[a] for a in common]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        rho = float(stats.spearmanr(t, p).statistic)
        tau = float(stats.kendalltau(t, p).statistic)
    k = min(k, len(common))
    overlap = len(top({a: truth[a] for a in common}, k) & top({a: proxy[a] for a in common}, k)) / k
    return Agreement(
        spearman=rho,
        kendall=tau,
        top_k=overlap,
        k=k,
        n=len(common),
    )
