"""How well a proxy's scores rank cells the way the ground truth does.

Spearman's rho and Kendall's tau (scipy.stats) over the common cells, and the overlap of
the two top-k sets, the quantities DC-BENCH reports for NAS on summaries (Cui et al.,
NeurIPS 2022, section 4.4). A proxy that gives every cell the same score has no ranking:
its correlations are NaN, not zero. With 40 cells a figure moves by tenths with the cells
drawn, so `bootstrap` gives each one an interval: two proxies are told apart only where
the intervals say so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class Intervals:
    """Percentile bootstrap intervals of `agreement`'s three figures.

    `undefined` counts resamples whose figure is NaN (a side constant on the resampled
    cells); the percentiles are taken over the others. `k` is the k asked for, which names
    the row's key (top5) even when fewer cells were scored.
    """

    spearman: tuple[float, float]
    kendall: tuple[float, float]
    top_k: tuple[float, float]
    k: int
    n: int
    resamples: int
    level: float
    seed: int
    undefined: int

    def record(self) -> dict:
        """The fields a result row carries (JSON-ready)."""
        return {
            "spearman_ci": list(self.spearman), "kendall_ci": list(self.kendall),
            f"top{self.k}_ci": list(self.top_k),
            "bootstrap": {
                "resamples": self.resamples, "level": self.level, "seed": self.seed,
                "undefined": self.undefined, "method": "percentile, cells resampled in pairs",
            },
        }  # fmt: skip


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair: Pearson of average ranks, as scipy computes it."""
    return _pearson_rows(stats.rankdata(a, axis=1), stats.rankdata(b, axis=1))


def kendall_rows(a: np.ndarray, b: np.ndarray, *, chunk: int = 500) -> np.ndarray:
    """Kendall's tau-b of each row pair (scipy's default): sum of sign(da) sign(db) over
    pairs, over the root of the untied pairs of each side."""
    out = np.empty(len(a))
    for s in range(0, len(a), chunk):
        da = np.sign(a[s : s + chunk, :, None] - a[s : s + chunk, None, :])
        db = np.sign(b[s : s + chunk, :, None] - b[s : s + chunk, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + chunk] = (da * db).sum(axis=(1, 2)) / np.sqrt(
                np.abs(da).sum(axis=(1, 2)) * np.abs(db).sum(axis=(1, 2))
            )
    return out


def top_k_rows(a: np.ndarray, b: np.ndarray, tie: np.ndarray, k: int) -> np.ndarray:
    """Overlap of the k best positions of each row pair; ties broken by `tie` (the cell's
    rank by name, as `top` does), then by position."""
    pos = np.broadcast_to(np.arange(a.shape[1]), a.shape)

    def best(v: np.ndarray) -> np.ndarray:
        order = np.lexsort((pos, tie, -v), axis=1)[:, :k]
        mask = np.zeros(v.shape, dtype=bool)
        np.put_along_axis(mask, order, True, axis=1)
        return mask

    return (best(a) & best(b)).sum(axis=1) / k


def bootstrap(
    truth: Mapping[str, float],
    proxy: Mapping[str, float],
    *,
    k: int = 5,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> Intervals:
    """Bootstrap intervals of rho, tau and top-k overlap over the common cells.

    Cells are drawn with replacement and each keeps its pair (truth, proxy), so the
    interval says how much the figure owes to which cells happened to be sampled (Efron &
    Tibshirani, "An Introduction to the Bootstrap", 1993, chapter 13: percentile
    intervals). Identical rankings give [1, 1]: every resample ranks its cells alike.
    """
    if not 0 < level < 1 or resamples < 1:
        raise DistillError(f"need 0 < level < 1 and resamples >= 1, got {level} and {resamples}")
    common = sorted(set(truth) & set(proxy))
    if len(common) < 2:
        raise DistillError(f"need at least 2 cells scored by both, got {len(common)}")
    t = np.array([truth[a] for a in common], dtype=float)
    p = np.array([proxy[a] for a in common], dtype=float)
    requested, k = k, min(k, len(common))
    idx = np.random.default_rng(seed).integers(0, len(common), size=(resamples, len(common)))
    tie = idx  # `common` is sorted by name: a cell's index is its rank by name
    figures = {
        "spearman": spearman_rows(t[idx], p[idx]),
        "kendall": kendall_rows(t[idx], p[idx]),
        "top_k": top_k_rows(t[idx], p[idx], tie, k),
    }
    bad = np.isnan(figures["spearman"]) | np.isnan(figures["kendall"])
    q = [50 * (1 - level), 50 * (1 + level)]

    def interval(v: np.ndarray) -> tuple[float, float]:
        v = v[~np.isnan(v)]
        if not len(v):
            return (math.nan, math.nan)
        lo, hi = np.percentile(v, q)
        return (float(lo), float(hi))

    return Intervals(
        spearman=interval(figures["spearman"]), kendall=interval(figures["kendall"]),
        top_k=interval(figures["top_k"]), k=requested, n=len(common), resamples=resamples,
        level=level, seed=seed, undefined=int(bad.sum()),
    )  # fmt: skip
