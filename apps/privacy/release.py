"""One private release of DM's real-side statistics: clipped class sums of pooled embeddings.

DP-MERF (Harder, Adamczewski & Park, "DP-MERF: Differentially Private Mean Embeddings with
Random Features", AISTATS 2021) privatises a data set's kernel mean embedding once and then
fits a generator to the noisy embedding for as long as it likes: everything after the one
release is post-processing. Here the features are DM's (Zhao & Bilen, WACV 2023): a fixed
pool of N random ConvNets, each with one siamese augmentation draw per class
(`datadistill.objectives.embedder_pool`). The networks and draws come from the run's
generator and never depend on the data, so they are public.

The mechanism, for every training example i of class c:

- v_i = the concatenation over the N members of member m's embedding of A_{m,c}(x_i)
  (N x D numbers), scaled by min(1, C_e / ||v_i||_2): the L2 norm of the whole
  concatenated vector is at most C_e = C sqrt(1 - s);
- one more coordinate, C sqrt(s), the example's vote for its class count (s the count's
  share of the squared norm; s = 0 takes the counts as public);
- so [v_i, C sqrt(s)] has L2 norm at most C. Summing per class, the K class sums together
  move by at most C when one example is added or removed (it lies in one class), and
  adding N(0, sigma^2 C^2) to every coordinate of every class sum once is one Gaussian
  mechanism with noise multiplier sigma: an Opacus accountant at sample rate 1 and one
  step counts it (`datadistill_apps.privacy.accounting`).

The class means are the noisy sums divided by the noisy counts (clamped at 1). Class
counts are privatised by default because, under add/remove adjacency, they are part of
what one example changes; their share s costs the embeddings a factor sqrt(1 - s) of the
clip (0.5% at s = 0.01) and leaves Fashion-MNIST's counts of 6,000 with a noise std of
sigma / sqrt(s), about 40 at epsilon 1.

Two passes over the data (norms, then clipped sums) because each example's scale depends
on all N members; when the embeddings fit in `cache_bytes` the second pass reuses them.

A pass may read a subset of the training rows (a federated client's partition) and, per
member, only a sample of them (`sample`: an example outside member m's sample has zeros
for m's block of v_i). The bound above holds for any sample fixed before the data are
read, provided an example's membership depends on that example alone (never on its
position among the others), so adding or removing one example changes no other's vector.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from datadistill.augment import DSA, AugParams
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.distribution import draw_seed, network_from_seed
from datadistill.objectives.embedder_pool import Member

PREFIX = "dp_dm."  # the release's tensors under the summary's preprocess.*


@dataclass(frozen=True)
class Embedders:
    """The public side of the release: networks (by seed) and per-class augmentation draws."""

    arch: str
    net_config: dict
    dsa_strategy: str | None
    seeds: list[int]
    draws: list[list[AugParams]] | None  # [member][class], one shared row each

    @property
    def size(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class ClassSums:
    """Per-class sums of the clipped vectors: embeddings [N, K, D], counts [K] (in examples),
    and each example's concatenated embedding norm before clipping [n] (for the audit)."""

    sums: torch.Tensor
    counts: torch.Tensor
    norms: torch.Tensor | None = None


def draw_embedders(
    *,
    arch: str,
    net_config: dict,
    dsa_strategy: str | None,
    size: int,
    classes: int,
    generator: torch.Generator,
) -> Embedders:
    """N members from the run's generator: a network seed, then one shared draw per class."""
    aug = DSA(dsa_strategy) if dsa_strategy else None
    seeds, draws = [], []
    for _ in range(size):
        seeds.append(draw_seed(generator))
        if aug is not None:
            draws.append([aug.draw(1, generator, shared=True) for _ in range(classes)])
    return Embedders(arch, dict(net_config), dsa_strategy, seeds, draws if aug else None)


def embed_class(net, x: torch.Tensor, draw: AugParams | None, aug: DSA | None, chunk: int):
    """Embeddings [len(x), D] of one class's images under the member's draw for that class."""
    out = []
    with torch.no_grad():
        for xs in x.split(chunk):
            if draw is not None:
                xs = aug.apply(xs, draw, index=torch.zeros(len(xs), dtype=torch.long))
            out.append(net.embed(xs).float())
    return torch.cat(out)


class Pass:
    """Passes over the training data under every member: each class's images on the device,
    and the member being embedded (networks are rebuilt from their seeds, one at a time, so a
    pool of thousands needs the memory of one network).

    Args:
        rows: the training rows to read (default all), e.g. a federated client's partition.
        sample: bool [N, len(rows)]: member m reads only the rows where sample[m] is True
            (default every row under every member).
    """

    def __init__(
        self,
        data: Dataset,
        embedders: Embedders,
        *,
        device="cpu",
        chunk: int = 1024,
        rows: torch.Tensor | None = None,
        sample: torch.Tensor | None = None,
    ):
        self.embedders = embedders
        self.aug = DSA(embedders.dsa_strategy) if embedders.dsa_strategy else None
        rows = torch.arange(len(data.y_train)) if rows is None else rows
        y = data.y_train[rows]
        # positions in `rows` of each class's examples
        self.where = [torch.nonzero(y == c).flatten() for c in range(data.spec.num_classes)]
        self.xs = [data.x_train[rows[w]].to(device) for w in self.where]
        self.sample = sample
        self.chunk = chunk
        self.data, self.device = data, device
        self.current: tuple[int, torch.nn.Module] | None = None
        self.width: int | None = None
        self.n = len(rows)
        self.reads = self.n * embedders.size if sample is None else int(sample.sum())

    def network(self, m: int) -> torch.nn.Module:
        if self.current is None or self.current[0] != m:
            e = self.embedders
            net = network_from_seed(e.arch, self.data, e.seeds[m], self.device, **e.net_config)
            self.current = (m, net.eval())
        return self.current[1]

    def read(self, m: int, c: int) -> torch.Tensor | slice:
        """Which of class c's examples member m reads: a bool mask, or every one."""
        return slice(None) if self.sample is None else self.sample[m][self.where[c]]

    def embed(self, m: int, c: int) -> torch.Tensor:
        """Member m's embeddings [read, D] of the class c examples it reads (`read`), under
        its draw for class c."""
        draws = self.embedders.draws
        draw = draws[m][c] if draws is not None else None
        x = self.xs[c][self.read(m, c)]
        if len(x) == 0:  # a member's sample may miss a class
            return torch.zeros(0, self.dim(), device=self.device)
        return embed_class(self.network(m), x, draw, self.aug, self.chunk)

    def dim(self) -> int:
        """The width of one member's embedding."""
        if self.width is None:
            blank = torch.zeros(1, *self.data.spec.shape, device=self.device)
            with torch.no_grad():
                self.width = int(self.network(0).embed(blank).shape[1])
        return self.width

    def per_example(self, norms2: list[torch.Tensor]) -> torch.Tensor:
        """Per-class squared norms back in the order of the pass's rows, as norms [n]."""
        out = torch.zeros(self.n)
        for w, n2 in zip(self.where, norms2, strict=True):
            out[w] = n2.sqrt().cpu()
        return out


def example_norms(data: Dataset, embedders: Embedders, *, device="cpu") -> torch.Tensor:
    """Each example's concatenated embedding norm before clipping [n] (for the audit)."""
    p = Pass(data, embedders, device=device)
    norms2 = [torch.zeros(len(w), device=device) for w in p.where]
    for m in range(embedders.size):  # member by member: each network is built once
        for c in range(len(p.where)):
            norms2[c] += (p.embed(m, c) ** 2).sum(1)
    return p.per_example(norms2)


def clipped_sums(
    data: Dataset,
    embedders: Embedders,
    *,
    clip_norm: float,
    count_share: float,
    device="cpu",
    cache_bytes: int = 2**30,
    rows: torch.Tensor | None = None,
    sample: torch.Tensor | None = None,
) -> ClassSums:
    """The noiseless class sums of the clipped vectors (module docstring): private data in.

    `rows` and `sample` as for `Pass`; the counts are of every row read (each example's
    count coordinate does not depend on the sample), the norms in the order of `rows`.
    """
    p = Pass(data, embedders, device=device, rows=rows, sample=sample)
    k, size, dim = len(p.where), embedders.size, p.dim()
    cache = p.reads * dim * 4 <= cache_bytes  # the second pass reuses the embeddings
    stored = {}
    norms2 = [torch.zeros(len(w), device=device) for w in p.where]
    for m in range(size):
        for c in range(k):
            e = p.embed(m, c)
            norms2[c][p.read(m, c)] += (e**2).sum(1)
            if cache:
                stored[m, c] = e
    bound = clip_norm * math.sqrt(1 - count_share)
    scales = [(bound / n2.sqrt().clamp(min=1e-12)).clamp(max=1.0) for n2 in norms2]
    sums = torch.zeros(size, k, dim)
    for m in range(size):
        for c in range(k):
            e = stored.pop((m, c)) if cache else p.embed(m, c)
            sums[m, c] = (scales[c][p.read(m, c), None] * e).sum(0).cpu()
    counts = torch.tensor([float(len(w)) for w in p.where])
    return ClassSums(sums, counts, p.per_example(norms2))


def privatise(
    clean: ClassSums,
    *,
    noise_multiplier: float,
    clip_norm: float,
    count_share: float,
    generator: torch.Generator,
) -> ClassSums:
    """The Gaussian mechanism, once: N(0, (sigma C)^2) on every coordinate of every class
    sum, the count coordinate C sqrt(s) n_c included (then read back as a count). With
    s = 0 the counts are returned as they are (public)."""
    std = noise_multiplier * clip_norm
    sums = clean.sums + torch.randn(clean.sums.shape, generator=generator) * std
    counts = clean.counts.clone()
    if count_share > 0:
        weight = clip_norm * math.sqrt(count_share)
        noisy = counts * weight + torch.randn(counts.shape, generator=generator) * std
        counts = noisy / weight
    return ClassSums(sums, counts)


def class_means(noisy: ClassSums) -> torch.Tensor:
    """Noisy sums over noisy counts (at least 1): [N, K, D]."""
    return noisy.sums / noisy.counts.clamp(min=1.0)[None, :, None]


def best_snr(*, noise_multiplier: float, pool: int, dim: int, per_class: float) -> float:
    """An upper bound on a class mean's signal-to-noise, from public numbers only: the mean
    of clipped vectors has norm at most C, the noise on it has norm about
    sigma C sqrt(N D) / n_c."""
    if noise_multiplier == 0:
        return math.inf
    return per_class / (noise_multiplier * math.sqrt(pool * dim))


def estimated_snr(noisy: ClassSums, *, noise_multiplier: float, clip_norm: float) -> float:
    """The median over classes of ||true class sum|| / ||noise on it||, estimated from the
    release alone (post-processing): E||noisy||^2 = ||true||^2 + N D (sigma C)^2."""
    if noise_multiplier == 0:
        return math.inf
    coords = noisy.sums[:, 0].numel()
    noise2 = coords * (noise_multiplier * clip_norm) ** 2
    per_class = (noisy.sums**2).sum(dim=(0, 2))
    signal = (per_class - noise2).clamp(min=0).sqrt()
    return float(np.median((signal / math.sqrt(noise2)).numpy()))


def warn_if_noisy(*, noise_multiplier: float, pool: int, dim: int, per_class: float) -> None:
    """A pool too large for the budget: the noise would exceed any class mean."""
    snr = best_snr(noise_multiplier=noise_multiplier, pool=pool, dim=dim, per_class=per_class)
    if snr < 1:
        fits = max(int(pool * snr**2), 1)
        warnings.warn(
            f"pool={pool} with {dim}-wide embeddings is too large for this budget: the noise "
            f"on a class mean (sigma {noise_multiplier:.3g}, about {per_class:.0f} examples a "
            f"class) exceeds the largest possible mean, signal-to-noise at most {snr:.2f}; "
            f"lower --set pool (at most {fits} for 1) or net_width, or raise epsilon",
            stacklevel=3,
        )


def warn_if_measured_noisy(snr: float, *, pool: int) -> None:
    """The release's own estimate (post-processing) says the noise dominates the means."""
    if snr < 1:
        warnings.warn(
            f"the release's class means are mostly noise: estimated signal-to-noise {snr:.2f} "
            f"(median over classes); a smaller pool (--set pool, now {pool}), a narrower "
            "embedding (net_width) or a larger epsilon would help",
            stacklevel=3,
        )


def members(embedders: Embedders, means: torch.Tensor) -> list[Member]:
    """Pool members holding the released means, for DM's loss."""
    return [
        Member(seed, embedders.draws[m] if embedders.draws is not None else None, means[m])
        for m, seed in enumerate(embedders.seeds)
    ]


def to_tensors(embedders: Embedders, means: torch.Tensor, counts: torch.Tensor) -> dict:
    """The release as tensors (names without PREFIX): means, counts, seeds, draws."""
    out = {
        "means": means.contiguous(),
        "counts": counts.contiguous(),
        "seeds": torch.tensor(embedders.seeds, dtype=torch.int64),
    }
    if embedders.draws is not None:
        ops = DSA(embedders.dsa_strategy).ops
        out["ops"] = torch.tensor(
            [[ops.index(d.op) for d in ds] for ds in embedders.draws], dtype=torch.int64
        )
        out["values"] = torch.stack(
            [torch.stack([d.values.contiguous() for d in ds]) for ds in embedders.draws]
        )
    return out


def from_tensors(tensors: dict, info: dict) -> tuple[Embedders, torch.Tensor, torch.Tensor]:
    """The inverse of `to_tensors`, with the embedders' description from `info`."""
    strategy = info["dsa_strategy"]
    draws = None
    if strategy:
        ops = DSA(strategy).ops
        draws = [
            [AugParams(ops[int(o)], v.clone()) for o, v in zip(os_, vs, strict=True)]
            for os_, vs in zip(tensors["ops"], tensors["values"], strict=True)
        ]
    emb = Embedders(
        info["arch"], dict(info["net_config"]), strategy, tensors["seeds"].tolist(), draws
    )
    return emb, tensors["means"].clone(), tensors["counts"].clone()


def read(path) -> tuple[dict, dict]:
    """A stored release from a dp-dm summary: (tensors, privacy info); reads no training
    data."""
    from datadistill.summary import Summary

    summary = Summary.load(path)
    tensors = {
        k.removeprefix(PREFIX): v for k, v in summary.preprocess.items() if k.startswith(PREFIX)
    }
    info = summary.extra.get("privacy", {})
    if "means" not in tensors or info.get("mechanism") != MECHANISM:
        raise DistillError(
            f"{path} holds no dp-dm release (preprocess.{PREFIX}*); pass the summary of a "
            "dp-dm run, or leave --set release out to make a new release"
        )
    return tensors, info


MECHANISM = "gaussian, one release of clipped per-class sums of pooled embeddings"
