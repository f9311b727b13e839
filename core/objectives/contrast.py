"""HaBa's adversarial contrastive constraint, added to any objective.

Liu et al., "Dataset Distillation via Factorization", NeurIPS 2022, section 3.3. Two
hallucinators applied to the same basis should give *different* images, or |H| of them buy
nothing. A feature extractor f is trained to embed the two views of a basis alike (and to
classify them: it learns what they share), while the summary is trained to make them
dissimilar under f. As HaBa's code (`distill_fac.py`):

- summary term (added to the wrapped objective's loss), for a random pair of hallucinators
  (a, b) and every basis: lambda_club * mean((cos(f(h_a(b)), f(h_b(b))) + 1) / 2);
- extractor step (SGD, lr 1e-3, momentum 0.9) on a fresh pair: lambda_cls * CE(f's logits,
  class of b) + lambda_likeli * mean((1 - cos) / 2) + lambda_contrast * SupCon(Khosla et
  al., NeurIPS 2020, temperature 0.07) over the normalised embeddings of both views.

HaBa runs the extractor step after the summary's step; here it runs at the start of the
next call, before the summary term reads f (the same sequence, shifted by one call, so
the first step trains f once before using it). Both views go through one DSA draw when a
strategy is given, as HaBa augments them. The extractor is the student architecture (HaBa's
`Extractor` is a ConvNet-3 with instance norm), initialised from the build generator.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from datadistill.augment import DSA
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.base import Objective
from datadistill.params.base import Parameterisation
from datadistill.params.haba import Hallucinated


class HallucinatorContrast(Objective):
    """`inner`'s loss plus HaBa's diversity term on the hallucinated views (module docstring).

    Args:
        inner: the objective that matches the summary to the data (HaBa: trajectory
            matching).
        extractor: f, a `datadistill.nets` network (its `embed` and logits are used).
        lambda_club, lambda_cls, lambda_likeli, lambda_contrast: HaBa's weights (its
            CIFAR-10 scripts: 0.1, 1, 0.1, 0.1).
        lr, momentum: the extractor's SGD.
        temperature: SupCon's.
        dsa_strategy: DSA string for both views, or None.
    """

    def __init__(
        self,
        inner: Objective,
        *,
        extractor: torch.nn.Module,
        lambda_club: float = 0.1,
        lambda_cls: float = 1.0,
        lambda_likeli: float = 0.1,
        lambda_contrast: float = 0.1,
        lr: float = 1e-3,
        momentum: float = 0.9,
        temperature: float = 0.07,
        dsa_strategy: str | None = None,
    ):
        self.inner = inner
        self.name = f"{inner.name}+hallucinator_contrast"
        self.extractor = extractor
        self.weights = (lambda_club, lambda_cls, lambda_likeli, lambda_contrast)
        self.opt = torch.optim.SGD(extractor.parameters(), lr=lr, momentum=momentum)
        self.temperature = temperature
        self.aug = DSA(dsa_strategy) if dsa_strategy else None

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        haba = hallucinated(param)
        self.extractor.to(haba.bases.device)
        self._extractor_step(haba, generator)
        main = self.inner.loss(param, data, generator, step)
        if haba.n_halluc < 2 or not self.weights[0]:
            return main
        a, b, _ = self._views(haba, generator)
        self.extractor.requires_grad_(False)  # the summary's term leaves f alone
        try:
            ea, eb = self.extractor.embed(a), self.extractor.embed(b)
        finally:
            self.extractor.requires_grad_(True)
        club = ((F.cosine_similarity(ea, eb) + 1) / 2).mean()
        return main + self.weights[0] * club

    def _views(self, haba: Hallucinated, generator):
        pair = torch.randperm(haba.n_halluc, generator=generator)[:2].tolist()
        a, b, y = haba.views(tuple(pair))
        if self.aug is not None:
            both = self.aug.apply(torch.cat([a, b]), self.aug.draw(2 * len(a), generator))
            a, b = both.split(len(a))
        return a, b, y

    def _extractor_step(self, haba: Hallucinated, generator) -> None:
        if haba.n_halluc < 2:
            return
        with torch.enable_grad():
            with torch.no_grad():
                a, b, y = self._views(haba, generator)
            _, w_cls, w_likeli, w_contrast = self.weights
            net = self.extractor
            ea, eb = net.embed(a), net.embed(b)
            logits = net.classifier(torch.cat([ea, eb]))
            loss = w_cls * F.cross_entropy(logits, torch.cat([y, y]))
            loss = loss + w_likeli * ((1 - F.cosine_similarity(ea, eb)) / 2).mean()
            za, zb = F.normalize(ea, dim=1), F.normalize(eb, dim=1)
            loss = loss + w_contrast * supervised_contrastive(za, zb, y, self.temperature)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def can_step(self) -> bool:
        return self.inner.can_step()

    def summary_extra(self) -> dict:
        return self.inner.summary_extra()

    def state_dict(self) -> dict:
        return {
            "inner": self.inner.state_dict(),
            "extractor": copy.deepcopy(self.extractor.state_dict()),
            "opt": copy.deepcopy(self.opt.state_dict()),
        }

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.extractor.load_state_dict(state["extractor"])
        self.opt.load_state_dict(state["opt"])


def hallucinated(param: Parameterisation) -> Hallucinated:
    """The HaBa parameterisation inside `param` (wrappers such as WithLearntLR hold it)."""
    found = param
    while not isinstance(found, Hallucinated):
        found = getattr(found, "inner", None)
        if found is None:
            raise DistillError(
                f"HaBa's contrastive term needs hallucinated views, but the summary is "
                f"'{param.name}'; use it with the haba parameterisation"
            )
    return found


def supervised_contrastive(
    za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """SupCon (Khosla et al., NeurIPS 2020, eq. 2) over two normalised views of n anchors:
    every other embedding of the same class is a positive, every other embedding a
    candidate; the mean over anchors of -mean log-probability of the positives."""
    z = torch.cat([za, zb])
    y = torch.cat([labels, labels])
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y.view(-1, 1) == y.view(1, -1)) & ~self_mask
    log_prob = log_prob.masked_fill(~positives, 0.0)
    return -(log_prob.sum(1) / positives.sum(1)).mean()
