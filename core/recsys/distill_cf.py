"""Distill-CF: synthetic users sampled from a learnt prior, matched through the infinity-AE.

Sachdeva, Dhaliwal, Wu & McAuley, "Infinite Recommendation Networks: A Data-Centric
Approach", NeurIPS 2022, section 4 (survey section 3, recommender systems; meta-model
matching, survey eq. 3, with KRR as the inner learner as in eq. 5). The summary is a
learnable prior Omega [n_users, items]; a synthetic user-item matrix is drawn from it by
multi-step Gumbel sampling, and Omega is optimised so that the infinity-AE fitted on the
draw reconstructs real users:

    X_s = hardtanh( sum_{j=1..gamma} softmax((Omega + G_j) / tau) ),  G_j ~ Gumbel(0, 1)
    min_Omega  E_u[ -X_u . log softmax(K_us (K_ss + lambda I)^{-1} X_s) ]
               + lambda_2 * mean_u ||X_s,u||_1 / (interactions per real user)

Each of the gamma draws picks (softly, temperature tau) one item per synthetic user, so
gamma and tau control each synthetic row's entropy: how many distinct items a fake user
holds and how peaked they are; the last term (the code's `cardinality_reg`) penalises dense
rows, measured against the real users' mean row sum. Columns are shaped only through
Omega's gradient: the reference code has no separate column term, and none is added here.

Reference code (`noveens/distill_cf`, `hyper_params.py`, `model.py`): gamma 200
(`num_per_user`; searched over 200, 500, 700), tau 10 (searched over 0.3, 0.5, 0.7, 5),
lambda_2 1e-3 (searched with 10), Omega initialised with the rows of random real users,
the multinomial log-likelihood above (called BCE there) on all users every step, Adam with
lr 0.04 for 500-1000 steps, and lambda chosen on validation HR@100 from the infinity-AE's
grid, re-tuned at every validation; here lambda is chosen once, at the first step (or
fixed by `reg`). The reference keeps the draw with the best validation score (patience
150); here the outer loop keeps the last Omega, and the summary is one fixed-seed draw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datadistill.kernels import FCNTK
from datadistill.kernels.krr import krr
from datadistill.objectives.base import Objective
from datadistill.params.base import Parameterisation
from datadistill.recsys.data import RecData
from datadistill.recsys.evaluate import best_ridge

MATERIALISE_SEED = 0  # the summary's draw: fixed, so a saved summary is reproducible


def gumbel(shape, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U), U ~ U(0, 1), from `generator` (on the CPU)."""
    u = torch.rand(shape, generator=generator).clamp(1e-10, 1 - 1e-10)
    return (-torch.log(-torch.log(u))).to(device, dtype)


def multi_gumbel(logits: torch.Tensor, *, draws: int, tau: float, generator) -> torch.Tensor:
    """hardtanh(sum of `draws` Gumbel-softmax samples per row): X_s in the module docstring."""
    total = torch.zeros_like(logits)
    for _ in range(draws):
        noise = gumbel(logits.shape, generator, logits.device, logits.dtype)
        total = total + F.softmax((logits + noise) / tau, dim=1)
    return total.clamp(max=1.0)  # hardtanh: the sum is >= 0, so only the top clamps


class GumbelPrior(Parameterisation):
    """Omega [n_users, items], the learnt prior; `draw(generator)` samples X_s from it."""

    name = "gumbel_prior"

    def __init__(self, data: RecData, users: int, *, draws: int, tau: float, init: str, generator):
        super().__init__(data.spec, users)
        if init == "real":
            rows = torch.randperm(data.spec.num_users, generator=generator)[:users]
            omega = data.train[rows].clone()
        elif init == "noise":
            omega = 0.01 * torch.randn(users, data.spec.num_items, generator=generator)
        else:
            raise ValueError(f"unknown init '{init}'; use 'real' or 'noise'")
        self.logits = nn.Parameter(omega.float())
        self.draws = draws
        self.tau = tau

    def draw(self, generator: torch.Generator) -> torch.Tensor:
        return multi_gumbel(self.logits, draws=self.draws, tau=self.tau, generator=generator)

    def sample(self, class_ids=None):
        """A fixed-seed draw (deterministic), with no labels: users have none."""
        x = self.draw(torch.Generator().manual_seed(MATERIALISE_SEED))
        return x, torch.zeros(len(x), dtype=torch.long, device=x.device)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"logits": self.logits.detach()}

    def stored_bytes(self) -> int:
        """Omega's bytes: the same as the dense matrix it materialises (n x items float32)."""
        return self.logits.numel() * self.logits.element_size()


class DistillCF(Objective):
    """The loss of the module docstring, for one outer step.

    Args:
        depth, w_var, b_var: the infinity-AE's NTK (reference: depth 1, 2, 0.01).
        reg: the infinity-AE ridge; 0 picks it on validation at the first step.
        cardinality_reg: lambda_2 (reference 1e-3).
        batch_real: real users per step (0: all, as the reference's batch_size -1).
    """

    name = "distill_cf"

    def __init__(
        self,
        *,
        depth: int = 1,
        w_var: float = 2.0,
        b_var: float = 0.01,
        reg: float = 0.0,
        cardinality_reg: float = 1e-3,
        batch_real: int = 0,
    ):
        self.kernel = FCNTK(depth=depth, w_var=w_var, b_var=b_var)
        self.reg = reg
        self.cardinality_reg = cardinality_reg
        self.batch_real = batch_real

    def loss(self, param: GumbelPrior, data: RecData, generator, step):
        x_s = param.draw(generator)
        if not self.reg:
            self.reg = best_ridge(x_s.detach(), data)
        n = data.spec.num_users
        if self.batch_real and self.batch_real < n:
            rows = torch.randperm(n, generator=generator)[: self.batch_real].to(x_s.device)
            x_t = data.train[rows]
        else:
            x_t = data.train
        pred = krr(self.kernel(x_s), x_s, self.kernel(x_t, x_s), reg=self.reg)
        nll = -(F.log_softmax(pred, dim=1) * x_t.double()).sum(1).mean()
        cardinality = x_s.sum(1).mean() / data.interactions_per_user
        return (nll + self.cardinality_reg * cardinality).to(x_s.dtype)

    def summary_extra(self) -> dict:
        return {"reg": float(self.reg)}

    def state_dict(self) -> dict:
        return {"reg": self.reg}

    def load_state_dict(self, state: dict) -> None:
        self.reg = state["reg"]
