"""Ranking metrics over held-out items: HR@k, nDCG@k and AUC, averaged over users.

Definitions follow the infinity-AE / Distill-CF evaluation (`eval.py` of their code):
items a user already has in the context are never recommended; HR@k is the fraction of a
user's held-out items in the top k, over min(#held-out, k) (so 1 is reachable); nDCG@k
uses binary gains and the ideal DCG of min(#held-out, k) hits. AUC is the probability that
a held-out item outranks an item the user never interacted with; the reference pools
(positive, sampled-negative) pairs over users, here it is computed per user over all
non-interacted items and averaged, which needs no negative sampling.
"""

from __future__ import annotations

import math

import torch


def ranking_metrics(
    scores: torch.Tensor, context: torch.Tensor, held_out: torch.Tensor, *, k: int = 10
) -> dict[str, float]:
    """HR@k, nDCG@k and AUC of `scores` [U, I] against `held_out` (bool [U, I]).

    Users without held-out items are skipped. `context` (nonzero = already seen) is masked.
    """
    seen = context > 0
    held = held_out.bool() & ~seen
    users = held.any(1)
    s = scores.double().masked_fill(seen, -math.inf)[users]
    held, seen = held[users], seen[users]
    n_pos = held.sum(1).double()

    top = s.topk(k, dim=1).indices
    hits = torch.gather(held, 1, top).double()  # [U, k]
    hr = hits.sum(1) / n_pos.clamp(max=k)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = (hits * discount).sum(1)
    ideal = torch.cumsum(discount, 0)[(n_pos.clamp(max=k) - 1).long()]
    ndcg = dcg / ideal

    # AUC by ranks among candidates (items not seen): seen items sort first at -inf
    order = s.argsort(dim=1)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(s.shape[1]).expand_as(order))
    ranks = ranks.double() - seen.sum(1, keepdim=True) + 1  # 1-based among candidates
    n_neg = (~seen & ~held).sum(1).double()
    pos_rank_sum = (ranks * held).sum(1)
    auc = (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg).clamp_min(1)
    return {
        f"hr@{k}": float(hr.mean()),
        f"ndcg@{k}": float(ndcg.mean()),
        "auc": float(auc.mean()),
        "users": int(users.sum()),
    }
