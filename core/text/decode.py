"""Show synthetic sentences as words: each position's nearest vocabulary embedding.

Sucholutsky & Schonlau (2021) display distilled text this way: a synthetic sentence is a
free [seq_len, dim] matrix, and its positions need not lie near any word, so the decoded
text is a view of the summary, not the summary itself. Distances are Euclidean to every row
of the frozen table, PAD's zero vector included, so positions that shrank towards zero
read as padding (not shown).
"""

from __future__ import annotations

import torch

from datadistill.text.data import PAD


def nearest_tokens(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Token ids [n, seq_len] of the table rows nearest to each position of x [n, L, dim]."""
    flat = x.reshape(-1, x.shape[-1]).float()
    return torch.cdist(flat, table.float()).argmin(dim=1).view(x.shape[:-1])


def decode(x: torch.Tensor, table: torch.Tensor, words: list[str]) -> list[str]:
    """Synthetic sentences as text, padding dropped."""
    ids = nearest_tokens(x, table)
    return [" ".join(words[i] for i in row.tolist() if words[i] != PAD) for row in ids]
