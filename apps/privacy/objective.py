"""DP gradient matching: DC/DSA whose real-side gradient is a Gaussian mechanism.

Dong, Zhao & Lyu, "Privacy for Free: How does Dataset Condensation Help Privacy?", ICML
2022, and Chen, Kerkouche & Fritz, "Private Set Generation with Discriminative
Information" (PSG), NeurIPS 2022; survey section 4. The objective is core's
`GradientMatching` (survey eq. 7, DC/DSA) with two overrides, because only the real side
touches private data:

- `_real_batches`: every real example joins the step's batch independently with
  probability q (Poisson sampling), then the batch is split by class. This is the sampling
  Opacus's Poisson-subsampled accountants assume; a fixed-size per-class draw is not.
- `_real_gradient`: per-example gradients, each clipped to norm C, summed, plus Gaussian
  noise of std sigma * C, divided by the class's expected batch size q * n_c.

One example lies in one class, so the K class sums together move by at most C when one
example is added or removed: each matching step is one Poisson-subsampled Gaussian
mechanism with multiplier sigma, whatever K is, and an Opacus accountant counts it. The
synthetic side, the network's training on synthetic data and the augmentation draws are
post-processing: nothing else may depend on the private data, hence one augmentation draw
per class and step whatever the drawn batch size, and synthetic images that start from
noise, never from real images. The dataset size and class counts are treated as public,
as Opacus does with its expected batch size.

The Poisson draws and the noise come from the mechanism's own generator (`noise.generator`):
secret by default, so nobody holding the summary (whose metadata records the run's seed) can
replay them; `noise_seed` makes them reproducible and the release is then marked as not
private. A checkpoint of a secure run holds no state of that generator: a resumed run draws
from a fresh secret seed, so the steps redone after the last checkpoint get new noise (their
first outputs were never released, and the accountant restarts from the checkpoint's count)
and no noise is ever replayed. A reproducible run checkpoints its generator, so it resumes
bit for bit. A checkpoint written in one mode is refused by a run in the other.
"""

from __future__ import annotations

import math

import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.gradient import GradientMatching
from datadistill_apps.privacy import accounting, mechanism, noise
from datadistill_apps.privacy.accounting import Plan


class DPGradientMatching(GradientMatching):
    """Per-class gradient matching whose real gradients are differentially private.

    Args:
        plan: the mechanism (sigma, q, delta, budget, accountant), from `accounting.plan`.
        clip: C, the per-example gradient norm bound.
        planned_steps: the run's iterations; with a budget the run stops earlier if the
            next step would exceed it.
        backend: per-example gradients by "func" (torch.func) or "opacus" (GradSampleModule).
        chunk: examples per per-example-gradient pass (bounds memory).
        noise_seed: -1 (default) draws the Poisson samples and the noise from a secret
            per-run seed; a seed >= 0 makes them reproducible (not a private release).
        **kwargs: `GradientMatching`'s (arch, metric, dsa_strategy, loops, ...);
            `batch_real` is unused: the batch is Poisson-sampled.
    """

    name = "dp_gradient_matching"

    def __init__(
        self,
        *,
        plan: Plan,
        clip: float,
        planned_steps: int,
        backend: str = "opacus",
        chunk: int = 512,
        noise_seed: int = -1,
        **kwargs,
    ):
        # one augmentation draw per class and step, shared by its real and synthetic images
        # (siamese "batch"): with a draw per real example, the synthetic side would depend on
        # how many real examples the Poisson draw took (private, not part of the release)
        if kwargs.setdefault("siamese", "batch") != "batch":
            raise ValueError("DP gradient matching needs siamese='batch' (see its comment)")
        # per-example clipping runs on the float32 network itself (Opacus / torch.func)
        if kwargs.setdefault("real_precision", "fp32") != "fp32":
            raise ValueError("DP gradient matching computes its real side in fp32 only")
        super().__init__(**kwargs)
        if not clip > 0:
            raise ValueError(f"the clipping norm must be positive, got {clip}")
        if backend not in mechanism.BACKENDS:
            raise ValueError(f"unknown backend '{backend}'; use one of {mechanism.BACKENDS}")
        self.plan = plan
        self.clip = clip
        self.planned_steps = planned_steps
        self.backend = backend
        self.chunk = chunk
        self.noise_seed = noise_seed
        self.mechanism_rng = noise.generator(noise_seed)  # the Poisson draws and the noise
        self.accountant = accounting.accountant_for(plan.accountant, [])
        self.steps = 0  # mechanism releases so far (also counted when sigma = 0)
        self._allowed: int | None = None  # steps the budget allows, computed once
        self._normaliser: list[float] | None = None

    # --- the real side ----------------------------------------------------------------------

    def _real_batches(self, data: Dataset, generator, device) -> list[torch.Tensor]:
        """Poisson sampling: each example joins with probability q, independently (drawn from
        the mechanism's generator, not the run's `generator`: see the module's docstring)."""
        q = self.plan.sample_rate
        take = (torch.rand(len(data.y_train), generator=self.mechanism_rng) < q).to(
            data.y_train.device
        )
        if self._normaliser is None:
            self._normaliser = [q * n for n in data.class_counts()]
        k = data.spec.num_classes
        return [data.x_train[ix[take[ix]]].to(device) for ix in map(data.class_index, range(k))]

    def _real_gradient(self, net, x_real, c, params, generator):
        y = torch.full((len(x_real),), c, dtype=torch.long, device=x_real.device)
        summed = mechanism.clipped_sum(
            net, x_real, y, clip=self.clip, backend=self.backend, chunk=self.chunk
        )
        return mechanism.add_noise(
            summed,
            clip=self.clip,
            noise_multiplier=self.plan.noise_multiplier,
            normaliser=self._normaliser[c],
            generator=self.mechanism_rng,
        )

    def _match(self, net, x_syn, y_syn, m, data, generator):
        loss = super()._match(net, x_syn, y_syn, m, data, generator)
        self.steps += 1  # one release of K class gradients: one mechanism step
        if self.plan.private:
            self.accountant.step(
                noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate
            )
        return loss

    # --- the budget -------------------------------------------------------------------------

    def can_step(self) -> bool:
        if self._allowed is None:
            self._allowed = self.steps + accounting.steps_within_budget(
                self.plan, self.accountant.history, self.planned_steps - self.steps
            )
        return self.steps < self._allowed

    def epsilon(self) -> float:
        """Epsilon spent so far at the plan's delta (Opacus's answer for the history)."""
        if not self.accountant.history:
            return math.inf if self.steps else 0.0
        return float(self.accountant.get_epsilon(delta=self.plan.delta))

    @property
    def noise_mode(self) -> str:
        return noise.mode(self.noise_seed, private=self.plan.private)

    def summary_extra(self) -> dict:
        """The mechanism, in the summary's metadata: enough to recompute epsilon."""
        from opacus.version import __version__ as opacus_version

        eps = self.epsilon()
        budget = self.plan.epsilon_budget
        return {
            "privacy": {
                "private": self.plan.private,
                "mechanism": "poisson-subsampled gaussian, per-example clipping",
                "sampling": "poisson",
                "accountant": self.plan.accountant,
                "epsilon": None if math.isinf(eps) else eps,
                "delta": self.plan.delta,
                "epsilon_budget": None if math.isinf(budget) else budget,
                "noise_multiplier": self.plan.noise_multiplier,
                "clip": self.clip,
                "sample_rate": self.plan.sample_rate,
                "steps": self.steps,
                "history": [list(h) for h in self.accountant.history],
                "stopped_by_budget": self.steps < self.planned_steps and not self.can_step(),
                "opacus": opacus_version,
                "noise": self.noise_mode,
                **({"noise_seed": self.noise_seed} if self.noise_seed >= 0 else {}),
            }
        }

    # --- inner state: the network (core's) plus the accountant's history ---------------------

    def state_dict(self) -> dict:
        private = {"steps": self.steps, "accountant": self.accountant.state_dict()}
        private["noise_seed"] = self.noise_seed
        if self.noise_seed >= 0:  # only reproducible noise may be replayed from a checkpoint
            private["mechanism_rng"] = self.mechanism_rng.get_state()
        return {**super().state_dict(), "privacy": private}

    def load_state_dict(self, state: dict) -> None:
        private = state["privacy"]
        written = private.get("noise_seed")  # None: written when the run's seed drew the noise
        if written != self.noise_seed:
            drew = "from the run's seed" if written is None else f"with noise_seed={written}"
            raise DistillError(
                f"this checkpoint drew its noise {drew}, this run with noise_seed="
                f"{self.noise_seed}; resume with the same setting, or delete the checkpoint "
                "to start afresh"
            )
        super().load_state_dict(state)
        self.steps = private["steps"]
        self.accountant.load_state_dict(private["accountant"])
        if self.noise_seed >= 0:
            self.mechanism_rng.set_state(private["mechanism_rng"])
        else:  # a fresh secret seed: steps redone after the checkpoint get new noise
            self.mechanism_rng = noise.generator(-1)
        self._allowed = None
