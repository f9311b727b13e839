"""Kernel ridge regression, the closed-form inner loop of survey eq. (5).

    f(X_t) = K_ts (K_ss + lambda I)^{-1} y_s,   lambda = reg * trace(K_ss) / n,

the regulariser scaled by the mean diagonal as KIP does (Nguyen et al., ICLR 2021; KIP's
code: `reg * trace(k_ss) / n`, reg 1e-6), so that `reg` means the same for every kernel
and input scale. The solve is a float64 Cholesky factorisation, with an LU solve as the
fallback when the regularised matrix is not numerically positive definite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def krr_solve(k_ss: torch.Tensor, y_s: torch.Tensor, *, reg: float) -> torch.Tensor:
    """alpha = (K_ss + reg * tr(K_ss) / n * I)^{-1} y_s in float64, differentiable in both."""
    k = k_ss.double()
    y = y_s.double()
    n = k.shape[0]
    ridge = abs(reg) * torch.diagonal(k).sum() / n
    k = k + ridge * torch.eye(n, dtype=k.dtype, device=k.device)
    chol, info = torch.linalg.cholesky_ex(k)
    if int(info) == 0:
        return torch.cholesky_solve(y, chol)
    return torch.linalg.solve(k, y)


def krr(k_ss: torch.Tensor, y_s: torch.Tensor, k_ts: torch.Tensor, *, reg: float) -> torch.Tensor:
    """Predictions K_ts (K_ss + reg * tr(K_ss) / n * I)^{-1} y_s, [n_t, K] float64.

    Args:
        k_ss: [n_s, n_s] kernel of the support (synthetic) set with itself.
        y_s: [n_s, K] regression targets of the support set.
        k_ts: [n_t, n_s] kernel between the targets and the support set.
        reg: ridge, relative to the mean diagonal of k_ss (KIP: 1e-6).
    """
    return k_ts.double() @ krr_solve(k_ss, y_s, reg=reg)


def centred_targets(y: torch.Tensor, num_classes: int, dtype=torch.float64) -> torch.Tensor:
    """Regression targets: class ids as one-hot minus 1/K; float labels minus 1/K.

    KIP, RFAD and FRePO all regress on centred one-hot labels. Summaries store labels that
    start as plain one-hot (the soft-label convention of the training loop), so every
    regression here centres them the same way, learnt ones included.
    """
    if y.dim() == 1:
        y = F.one_hot(y, num_classes)
    return y.to(dtype) - 1.0 / num_classes
