"""The frozen word-embedding table: PPMI + truncated SVD of the training split's co-occurrences.

Sucholutsky & Schonlau (2021) distil text under frozen pretrained GloVe vectors (100-d in
their IMDB runs). GloVe cannot be downloaded here, and a random fixed table would make
nearest-token decoding meaningless and give no two words related directions. So the table
is fitted once, on the training split only, by the count-based method that matches
word2vec and GloVe on similarity tasks when tuned alike (Levy, Goldberg & Dagan, TACL 2015):
positive pointwise mutual information of co-occurrences within `window` tokens, with the
context distribution smoothed by 0.75, factorised by a rank-`dim` SVD and weighted by
sqrt(singular values) ("eigenvalue weighting" p = 0.5). Rows are scaled to unit length so
that a word's frequency does not set its scale; PAD and UNK are the zero vector.
"""

from __future__ import annotations

import torch


def cooccurrence(tokens: torch.Tensor, vocab_size: int, *, window: int = 5) -> torch.Tensor:
    """Sparse symmetric counts [V, V] of word pairs within `window` positions (ids >= 2)."""
    rows, cols = [], []
    for offset in range(1, window + 1):
        a, b = tokens[:, :-offset].flatten(), tokens[:, offset:].flatten()
        keep = (a >= 2) & (b >= 2)
        rows += [a[keep], b[keep]]
        cols += [b[keep], a[keep]]
    index = torch.stack([torch.cat(rows), torch.cat(cols)])
    values = torch.ones(index.shape[1], dtype=torch.float64)
    return torch.sparse_coo_tensor(
        index, values, (vocab_size, vocab_size), check_invariants=True
    ).coalesce()


def ppmi_svd(
    tokens: torch.Tensor, vocab_size: int, *, dim: int, window: int = 5, smoothing: float = 0.75
) -> torch.Tensor:
    """The [V, dim] float32 table (module docstring); deterministic."""
    counts = cooccurrence(tokens, vocab_size, window=window)
    (i, j), c = counts.indices(), counts.values()
    row = torch.zeros(vocab_size, dtype=torch.float64).index_add_(0, i, c)
    ctx = row.pow(smoothing)
    pmi = torch.log(c * ctx.sum() / (row[i] * ctx[j]))
    keep = pmi > 0
    ppmi = torch.sparse_coo_tensor(
        torch.stack([i[keep], j[keep]]), pmi[keep], (vocab_size, vocab_size), check_invariants=True
    ).coalesce()
    q = min(dim, vocab_size - 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        u, s, _ = torch.svd_lowrank(ppmi, q=q, niter=6)
    table = torch.zeros(vocab_size, dim, dtype=torch.float64)
    table[:, :q] = u * s.sqrt()
    table = table / table.norm(dim=1, keepdim=True).clamp_min(1e-12)
    table[:2] = 0.0  # PAD, UNK
    return table.float()
