"""EASE: a linear item-item autoencoder in closed form, the transfer model for summaries.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019, eq. (8):
min_B ||X - X B||_F^2 + lambda ||B||_F^2 s.t. diag(B) = 0 has the solution

    P = (X^T X + lambda I)^{-1},   B_ij = -P_ij / P_jj (i != j),   B_ii = 0,

and scores X_c B. It takes any real-valued X, so it trains on a synthetic summary as it
trains on real users: Distill-CF reports EASE trained on its summaries (NeurIPS 2022,
section 5) to show the data transfers beyond the infinity-AE it was distilled with.
"""

from __future__ import annotations

import torch

RIDGES = (1.0, 10.0, 100.0, 1000.0)


class EASE:
    name = "ease"

    def __init__(self, *, reg: float = 100.0):
        self.reg = reg
        self.weights: torch.Tensor | None = None

    def fit(self, support: torch.Tensor) -> EASE:
        x = support.double()
        gram = x.T @ x + self.reg * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        p = torch.linalg.inv(gram)
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        self.weights = b
        return self

    def predict(self, context: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            raise RuntimeError("call fit() before predict()")
        return context.double() @ self.weights
