"""The kernel interface: k(x1, x2) -> Gram matrix, and kernels given by explicit features.

Meta-model matching with a kernel (survey section 2.1, eq. 5) replaces the inner training
loop by kernel ridge regression, so an objective only needs the Gram matrices between the
synthetic set and itself and between a real batch and the synthetic set (`gram`). Gram
matrices are returned in float64: the ridge KIP uses (1e-6 of the mean diagonal) leaves
condition numbers near 1e6, where float32 rounding would be amplified to O(0.1) errors in
the solution (KIP enables JAX's x64 mode for the same reason).
"""

from __future__ import annotations

import torch


class Kernel:
    """Base class: `kernel(x1, x2)` -> [n1, n2] float64 Gram matrix; `x2=None` means x1.

    Inputs are batches [n, ...] (images or vectors); what a kernel does with the trailing
    dimensions is its own business (the fully connected kernels flatten them).
    """

    name = "kernel"

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def diag(self, x: torch.Tensor) -> torch.Tensor:
        """k(x_i, x_i) for every row, [n]; kernels override this when it is cheaper."""
        return torch.stack([self(xi[None])[0, 0] for xi in x])

    def gram(self, x_s: torch.Tensor, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K_ss, K_ts): what kernel ridge regression from x_s to x_t needs."""
        return self(x_s), self(x_t, x_s)

    def to(self, device: torch.device | str) -> Kernel:
        """The kernel with its tensors (if any) on `device`; parameter-free kernels: self."""
        return self


class FeatureKernel(Kernel):
    """k(x, x') = w_var * <phi(x), phi(x')> + b_var for an explicit feature map phi.

    This is the form of a random-feature NNGP (the readout layer of a network with weight
    variance w_var and bias variance b_var on top of features phi), and with w_var 1 and
    b_var 0 of FRePO's K = phi phi^T. Features are computed once per set (`gram`).
    """

    name = "features"

    def __init__(self, *, w_var: float = 1.0, b_var: float = 0.0):
        self.w_var = w_var
        self.b_var = b_var

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): [n, D], already scaled so that the kernel is w_var * phi phi^T + b_var."""
        raise NotImplementedError

    def _from_features(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        k = f1.double() @ f2.double().T
        if self.w_var != 1.0:
            k = k * self.w_var
        return k + self.b_var if self.b_var else k

    def __call__(self, x1, x2=None):
        f1 = self.features(x1)
        return self._from_features(f1, f1 if x2 is None else self.features(x2))

    def diag(self, x):
        f = self.features(x).double()
        return self.w_var * (f * f).sum(1) + self.b_var

    def gram(self, x_s, x_t):
        f_s, f_t = self.features(x_s), self.features(x_t)
        return self._from_features(f_s, f_s), self._from_features(f_t, f_s)
