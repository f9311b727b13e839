"""The infinity-AE: an autoencoder with an infinitely wide bottleneck, trained in closed form.

Sachdeva, Dhaliwal, Wu & McAuley, "Infinite Recommendation Networks: A Data-Centric
Approach", NeurIPS 2022, section 3: a user's row X_u (its items) is both the input and the
target of a one-hidden-layer ReLU autoencoder; at infinite width, training it to
convergence is kernel ridge regression with the network's NTK K (their eq. 2):

    X_hat = K(X_c, X_s) (K(X_s, X_s) + lambda I)^{-1} X_s,

X_s the rows it is fitted on (all users, or a summary's synthetic users), X_c the rows
whose missing items are to be scored. The code (`noveens/infinite_ae_cf`, `model.py`)
uses neural-tangents' NTK of Dense(W_std sqrt 2, b_std 0.1, NTK parameterisation) - ReLU -
Dense, which is `datadistill.kernels.FCNTK(depth=1, w_var=2, b_var=0.01)`, and scales lambda by
the mean diagonal of K(X_s, X_s), as `datadistill.kernels.krr` does. Its single hyperparameter
lambda is picked on validation items from {1e-5, 1e-3, 0.1, 1, 5, 50} (`eval.py`).
"""

from __future__ import annotations

import torch

from datadistill.kernels import FCNTK
from datadistill.kernels.krr import krr_solve

RIDGES = (1e-5, 1e-3, 0.1, 1.0, 5.0, 50.0)


class InfiniteAE:
    """Fit on support rows X_s ([n, items]), then score context rows (`predict`)."""

    name = "infinite-ae"

    def __init__(
        self, *, reg: float = 0.1, depth: int = 1, w_var: float = 2.0, b_var: float = 0.01
    ):
        self.reg = reg
        self.kernel = FCNTK(depth=depth, w_var=w_var, b_var=b_var)
        self._support: torch.Tensor | None = None
        self._alpha: torch.Tensor | None = None

    def fit(self, support: torch.Tensor) -> InfiniteAE:
        """alpha = (K_ss + reg * tr(K_ss) / n I)^{-1} X_s, float64."""
        self._support = support
        self._alpha = krr_solve(self.kernel(support), support, reg=self.reg)
        return self

    def predict(self, context: torch.Tensor) -> torch.Tensor:
        """Scores [n_c, items] (float64) of every item for every context row."""
        if self._alpha is None:
            raise RuntimeError("call fit() before predict()")
        return self.kernel(context, self._support) @ self._alpha
