"""Distribution matching: match the mean embedding of real and synthetic data per class.

DM: Zhao & Bilen, "Dataset Condensation with Distribution Matching", WACV 2023; survey
section 2.4, eq. (11): min_S E_{theta ~ P_theta} sum_c || mean psi_theta(A(T_c)) -
mean psi_theta(A(S_c)) ||^2, with psi_theta a randomly initialised network's embedding
(sampled afresh every iteration) and A a siamese DSA draw shared by both sides.

All classes go through the network in one batched forward pass (real and synthetic
separately). That is exact, not an approximation, because the ConvNet's instance norm
normalises each example on its own: no statistic is shared across the batch. Batch norm
would mix classes, so `MeanEmbedding` refuses it.

The real side is a target (no gradient), averaged over 256 images a class; where bfloat16
convolutions are fast (`datadistill.accel.fast_bf16`) it runs in bfloat16. Its class means then
differ from float32's by ~0.1% (relative), 30x less than the sampling noise of a 256-image
mean (~3%), measured on Fashion-MNIST (experiments/engine_speed.py). The synthetic side,
whose gradient the images receive, stays float32.

With `pool=N` (`datadistill.objectives.embedder_pool`) the networks, augmentation draws and
real class means of N steps are kept and reused, so a step after the pool has filled
computes only the synthetic side.
"""

from __future__ import annotations

import copy

import torch

from datadistill import accel, nets
from datadistill.augment import DSA, AugParams, check_siamese
from datadistill.data import Dataset
from datadistill.objectives.base import Objective
from datadistill.objectives.embedder_pool import EmbedderPool, Member
from datadistill.params.base import Parameterisation


def draw_seed(generator: torch.Generator) -> int:
    """A network seed from the run's generator."""
    return int(torch.randint(2**62, (1,), generator=generator))


def network_from_seed(arch: str, data: Dataset, seed: int, device, **config):
    """The network `seed` initialises, built without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nets.build(arch, data.spec, **config)
    return net.to(device)


def fresh_network(arch: str, data: Dataset, generator: torch.Generator, device, **config):
    """A randomly initialised network whose init depends only on `generator`."""
    return network_from_seed(arch, data, draw_seed(generator), device, **config)


def _embed_eager(net, x):
    return net.embed(x)


_embed = accel.compile_fn(_embed_eager)


class MeanEmbedding(Objective):
    """DM's loss, all classes batched (see module docstring).

    Args:
        arch: embedding network, re-initialised every step.
        batch_real: real images per class per step (DM: 256).
        dsa_strategy: DSA string, or None for no augmentation.
        per_class: compute one class at a time, as the reference code does; kept only so
            the speed benchmark can compare against it in the same run.
        siamese: "batch" (one DSA draw for a class's real and synthetic batches, DM's code)
            or "example" (a draw per example pair); see `datadistill.augment`.
        target_precision: the real side's: "fp32", "bf16", or "auto" (bf16 where
            `datadistill.accel.fast_bf16`, else fp32; see the module docstring).
        pool: members of an `EmbedderPool` to reuse (0: a fresh network every step).
        pool_statistic: a member's real means over one batch ("batch") or the whole class.
    """

    name = "mean_embedding"
    cpu_chunk = 512

    def __init__(
        self,
        *,
        arch: str = "convnet",
        batch_real: int = 256,
        dsa_strategy: str | None,
        per_class: bool = False,
        net_config: dict | None = None,
        target_precision: str = "auto",
        siamese: str = "batch",
        pool: int = 0,
        pool_statistic: str = "batch",
    ):
        accel.check_precision("target_precision", target_precision)
        if "bn" in arch.split("_"):
            raise ValueError(
                "distribution matching needs a per-example norm; batch norm mixes classes"
            )
        self.arch = arch
        self.batch_real = batch_real
        self.aug = DSA(dsa_strategy) if dsa_strategy else None
        self.per_class = per_class
        self.net_config = net_config or {}
        self.target_precision = target_precision
        self.siamese = check_siamese(siamese)
        self._used: torch.dtype | None = None
        self.pool = EmbedderPool(pool, pool_statistic) if pool else None
        if self.pool is not None and per_class:
            raise ValueError("per_class is the fresh-network reference; it takes no pool")

    def target_dtype(self, device: torch.device) -> torch.dtype:
        return accel.precision_dtype(self.target_precision, device)

    def summary_extra(self) -> dict:
        """What "auto" chose and the pool, so the summary says how its targets were made."""
        used = accel.PRECISION_NAMES.get(self._used)
        extra = {"target_precision": used} if used else {}
        if self.pool is not None:
            extra["pool"] = self.pool.describe()
        return extra

    def one_off_steps(self, step: int) -> int:
        """The pool's members yet to be filled (they are filled in turn, from step 0)."""
        if self.pool is None or self.pool.visit(step) is not None:
            return 0
        return self.pool.size - len(self.pool.members)

    def state_dict(self) -> dict:
        return self.pool.state_dict(self._ops()) if self.pool is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.pool is not None and "pool_seeds" in state:
            self.pool.load_state_dict(state, self._ops())

    def _ops(self) -> tuple[str, ...]:
        return tuple(self.aug.ops) if self.aug is not None else ()

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        x_syn, _ = param.sample()
        device = x_syn.device
        k, m = data.spec.num_classes, param.images_per_class
        if self.per_class:
            return self._reference_step(data, generator, x_syn, k, m)
        # oneDNN's CPU convolutions run 6-11% faster on channels-last tensors here (DM's step,
        # experiments/engine_speed.py); the GPU path keeps the default layout (not measured)
        fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        member = self.pool.visit(step) if self.pool is not None else None
        if member is None:
            member, net = self._new_member(data, generator, device, m, fmt)
            if self.pool is not None:
                self.pool.add(member)
        else:
            net = self._network(data, member.seed, device, fmt)
        if member.draws is not None:
            rows = len(member.draws[0].values)
            x_syn = self.aug.apply_groups(x_syn, member.draws, index=torch.arange(m) % rows)
        mu_syn = _embed(net, x_syn.contiguous(memory_format=fmt)).view(k, m, -1).mean(1)
        return ((member.means.to(device) - mu_syn) ** 2).sum()

    def _network(self, data, seed, device, fmt):
        net = network_from_seed(self.arch, data, seed, device, **self.net_config)
        for p in net.parameters():
            p.requires_grad_(False)
        return net.to(memory_format=fmt)

    def _draw(self, data: Dataset, generator, device, fmt):
        """A step's network, real batch and per-class augmentation draws, in fresh DM's order
        (network seed, real batch, augmentation)."""
        k, n = data.spec.num_classes, self.batch_real
        seed = draw_seed(generator)
        net = self._network(data, seed, device, fmt)
        x_real = data.sample_per_class(n, generator).to(device)
        draws = None
        if self.aug is not None:
            # DM's code: one siamese draw per class (its own operation), in batch mode the
            # same parameters for the class's whole real and synthetic batches
            shared = self.siamese == "batch"
            draws = [self.aug.draw(n, generator, shared) for _ in range(k)]
        return seed, net, x_real, draws

    def _new_member(self, data: Dataset, generator, device, m: int, fmt):
        """Draw a step (`_draw`) and compute its real class means; returns the member and its
        network."""
        k, n = data.spec.num_classes, self.batch_real
        seed, net, x_real, draws = self._draw(data, generator, device, fmt)
        if self.pool is not None and self.pool.statistic == "class":
            means = torch.stack(
                [
                    self._real_means(net, self._augmented(data, draws, c, n, device), fmt).mean(0)
                    for c in range(k)
                ]
            )
        else:
            if draws is not None:
                x_real = self.aug.apply_groups(x_real, draws)
            means = self._real_means(net, x_real, fmt).view(k, n, -1).mean(1)
        if draws is not None:  # the synthetic side reads rows 0..m-1 (cycling past n)
            draws = [AugParams(d.op, d.values[: min(m, n)].contiguous()) for d in draws]
        return Member(seed, draws, means), net

    def _augmented(self, data, draws, c, n, device):
        """Every training image of class `c` under the member's draw for it."""
        x = data.x_train[data.class_index(c)].to(device)
        if draws is None:
            return x
        return self.aug.apply(x, draws[c], index=torch.arange(len(x)) % n)

    def _real_means(self, net, x_real, fmt) -> torch.Tensor:
        """Embeddings of real images (no gradient), in the real side's precision, as float32."""
        dtype = self._used = self.target_dtype(x_real.device)
        target = net if dtype == torch.float32 else copy.deepcopy(net).to(dtype)
        with torch.no_grad():  # chunks keep activations in cache on a CPU; one pass on a GPU
            chunk = len(x_real) if x_real.device.type == "cuda" else self.cpu_chunk
            chunks = x_real.to(dtype).split(chunk)
            return torch.cat(
                [_embed(target, c.contiguous(memory_format=fmt)) for c in chunks]
            ).float()

    def _reference_step(self, data, generator, x_syn, k, m):
        """DM's reference step, one class at a time in float32 (for the speed benchmark)."""
        _, net, x_real, draws = self._draw(data, generator, x_syn.device, torch.contiguous_format)
        n = self.batch_real
        if draws is not None:
            x_real = self.aug.apply_groups(x_real, draws)
            x_syn = self.aug.apply_groups(x_syn, draws, index=torch.arange(m).remainder(n))
        return self._per_class(net, x_real, x_syn, k, n, m)

    @staticmethod
    def _per_class(net, x_real, x_syn, k, n, m):
        loss = 0.0
        for c in range(k):
            mu_real = net.embed(x_real[c * n : (c + 1) * n]).detach().mean(0)
            mu_syn = net.embed(x_syn[c * m : (c + 1) * m]).mean(0)
            loss = loss + ((mu_real - mu_syn) ** 2).sum()
        return loss
