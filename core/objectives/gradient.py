"""Gradient matching: DC, DSA, DCC and IDC's real-trained variant (survey section 2.2).

DC: Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching", ICLR 2021; survey
eq. (7): min_S E_{theta_0} [ sum_t sum_c D(grad l(T_c; theta_t), grad l(S_c; theta_t)) ], with
theta_{t+1} = theta_t - eta grad l(S; theta_t): per class, the gradient of the loss on a real
batch and on the synthetic images are pulled together, along the trajectory of a network that
is trained on the synthetic set between matching steps. DSA (Zhao & Bilen, ICML 2021) adds a
siamese augmentation: one draw applied to the real and the synthetic batch of a class.

DCC: Lee et al., "Dataset Condensation with Contrastive Signals", ICML 2022; survey eq. (8):
D(mean_c grad l(T_c), mean_c grad l(S_c)), one gradient of all classes on each side, so the
synthetic set also learns what tells classes apart.

IDC: Kim et al., "Dataset Condensation via Efficient Synthetic-Data Parameterization", ICML
2022; survey eq. (9): as (7) but theta_{t+1} = theta_t - eta grad l(T; theta_t), the network
between matching steps is trained on the *real* data, and D is a plain mse or l1 distance over
the convolution kernels only.

How DC's two loops map onto the interface: one `loss()` call is one matching step (the outer
loop of `datadistill.distill` then takes one step on the images). The objective keeps the current
network and its optimiser as state; at the start of the next call it first trains that network
for `inner_loop` steps on the *current* (already updated) synthetic set, as DC does between
matching steps, and every `outer_loop` calls it draws a fresh network instead. So DC's
"iteration" is `outer_loop` of our iterations.

Speed on a CPU. Classes stay one at a time: batching them with `vmap` gave the same gradient
0.58x as fast (experiments/gradient_batching.py). What is sped up is what needs no second
derivative: the real side (a target, 256 images a class) runs compiled and, where bfloat16
convolutions are fast (`datadistill.accel.fast_bf16`), in a bfloat16 channels-last copy of the
network, as DM's real side does; the network's training between matching steps runs
compiled in float32 (the same numbers to 1e-5). The synthetic side needs the gradient of a
gradient, which compiled graphs do not give, and stays eager float32. Against the plain
per-class loop: `experiments/method_speed.py --baseline` (method_speed.json).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from datadistill import accel
from datadistill.augment import DSA, check_siamese
from datadistill.data import Dataset
from datadistill.objectives.base import Objective, restored_network
from datadistill.objectives.distribution import fresh_network
from datadistill.params.base import Parameterisation
from datadistill.train import loss_fn

METRICS = ("layerwise", "cos", "mse", "l1")
_EPS = 1e-6  # DC's epsilon in the cosine denominators


def _forward_eager(net, x):
    return net(x)


# compiled once per process; networks are arguments, so a fresh network recompiles nothing
_forward = accel.compile_fn(_forward_eager)


def gradient_distance(
    g_syn: Sequence[torch.Tensor],
    g_real: Sequence[torch.Tensor],
    metric: str = "layerwise",
    *,
    conv_only: bool = False,
) -> torch.Tensor:
    """Distance D between two gradients given as lists of per-parameter tensors.

    Args:
        metric: ``layerwise`` is DC's D: every weight tensor is reshaped to [out, -1] and
            D sums ``1 - cos`` over its output nodes; 1-D tensors (biases, norm scales)
            count 0, as in DC. ``cos`` is ``1 - cos`` of the whole flattened gradients,
            ``mse`` the summed squared difference and ``l1`` the summed absolute difference
            (DC's and IDC's alternatives).
        conv_only: keep only tensors of more than two dimensions (convolution kernels), as
            IDC matches neither biases, norms nor the classifier.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown gradient distance '{metric}'; use one of: {', '.join(METRICS)}")
    pairs = [(s, r) for s, r in zip(g_syn, g_real, strict=True) if not conv_only or s.dim() > 2]
    if not pairs:
        raise ValueError("no parameter tensor left to match; the network has no convolution")
    if metric == "layerwise":
        total = pairs[0][0].new_zeros(())
        for s, r in pairs:
            if s.dim() == 1:
                continue
            s, r = s.reshape(len(s), -1), r.reshape(len(r), -1)
            cos = (s * r).sum(-1) / (s.norm(dim=-1) * r.norm(dim=-1) + _EPS)
            total = total + (1 - cos).sum()
        return total
    s = torch.cat([p.reshape(-1) for p, _ in pairs])
    r = torch.cat([p.reshape(-1) for _, p in pairs])
    if metric == "cos":
        return 1 - (s * r).sum() / (s.norm() * r.norm() + _EPS)
    if metric == "mse":
        return ((s - r) ** 2).sum()
    return (s - r).abs().sum()


class GradientMatching(Objective):
    """DC's per-class gradient matching (survey eq. 7); with `dsa_strategy` it is DSA.

    Args:
        arch: network whose gradients are matched; re-initialised every `outer_loop` calls.
        batch_real: real images per class per matching step (DC: 256).
        metric: the distance D, see `gradient_distance` (DC: layerwise).
        dsa_strategy: DSA string for the siamese augmentation of matching batches and of the
            network's training batches (DSA), or None (DC).
        outer_loop: matching steps per network (DC's outer_loop).
        inner_loop: epochs over the synthetic set that train the network between two
            matching steps (DC's inner_loop), in batches of `batch_train`.
        lr_net: learning rate of the network's plain SGD (DC: 0.01, no momentum).
        conv_only: match only convolution kernels (see `gradient_distance`).
        loss_scale: multiplies the loss; for SGD on the images this is a learning-rate
            factor that can depend on the ipc (IDC scales its image learning rate by ipc/10).
        real_precision: the real side's: "fp32", "bf16", or "auto" (bf16 where
            `datadistill.accel.fast_bf16`, else fp32; see the module docstring).
    """

    name = "gradient_matching"

    def __init__(
        self,
        *,
        arch: str = "convnet",
        batch_real: int = 256,
        metric: str = "layerwise",
        dsa_strategy: str | None = None,
        outer_loop: int = 1,
        inner_loop: int = 1,
        lr_net: float = 0.01,
        batch_train: int = 256,
        conv_only: bool = False,
        loss_scale: float = 1.0,
        net_config: dict | None = None,
        siamese: str = "batch",
        real_precision: str = "auto",
    ):
        accel.check_precision("real_precision", real_precision)
        if "bn" in arch.split("_"):
            raise ValueError(
                "gradient matching here needs a per-example norm (instance norm); batch norm "
                "needs DC's frozen running statistics, which are not implemented"
            )
        if metric not in METRICS:
            raise ValueError(
                f"unknown gradient distance '{metric}'; use one of: {', '.join(METRICS)}"
            )
        if outer_loop < 1 or inner_loop < 0:
            raise ValueError(
                f"need outer_loop >= 1 and inner_loop >= 0, got {outer_loop}, {inner_loop}"
            )
        self.arch = arch
        self.batch_real = batch_real
        self.metric = metric
        self.aug = DSA(dsa_strategy) if dsa_strategy else None
        self.siamese = check_siamese(siamese)
        self.outer_loop = outer_loop
        self.inner_loop = inner_loop
        self.lr_net = lr_net
        self.batch_train = batch_train
        self.conv_only = conv_only
        self.loss_scale = loss_scale
        self.net_config = net_config or {}
        self.real_precision = real_precision
        self._used: torch.dtype | None = None  # what "auto" chose, for the summary file
        self._net: torch.nn.Module | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._age = 0  # matching steps taken with the current network
        self._nets = 0  # networks drawn so far
        self._pending: dict | None = None  # state loaded before the network could be rebuilt

    # --- the template: one matching step per call -------------------------------------------

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        x_syn, y_syn = param.sample()
        device = x_syn.device
        if self._pending is not None:
            self._restore(data, device)
        if self._net is None or self._age >= self.outer_loop:
            self._net = fresh_network(self.arch, data, generator, device, **self.net_config)
            self._opt = self._optimiser(self._net)
            self._age, self._nets = 0, self._nets + 1
        else:  # the images moved since the last match: train the net before matching again
            self._net.train()
            self._update_network(x_syn.detach(), y_syn.detach(), data, generator)
        self._net.train()
        loss = self._match(self._net, x_syn, y_syn, param.images_per_class, data, generator)
        self._age += 1
        return loss * self.loss_scale if self.loss_scale != 1.0 else loss

    def _optimiser(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(net.parameters(), lr=self.lr_net)

    def summary_extra(self) -> dict:
        used = accel.PRECISION_NAMES.get(self._used)
        return {"real_precision": used} if used else {}

    def _real_network(self, net: torch.nn.Module) -> torch.nn.Module:
        """The network the real side runs through: `net` itself in float32, or a bfloat16
        channels-last copy of its current weights (made afresh at every matching step)."""
        dtype = accel.precision_dtype(self.real_precision, next(net.parameters()).device)
        self._used = dtype
        if dtype == torch.float32:
            return net
        return copy.deepcopy(net).to(dtype=dtype, memory_format=torch.channels_last)

    @staticmethod
    def _real_logits(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits of `net` (from `_real_network`) on real images, compiled."""
        dtype = next(net.parameters()).dtype
        if dtype != torch.float32:
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        return _forward(net, x).float()

    def _update_network(self, x_syn, y_syn, data: Dataset, generator) -> None:
        """DC: `inner_loop` epochs of SGD on the synthetic set (augmented under DSA)."""
        for _ in range(self.inner_loop):
            order = torch.randperm(len(x_syn), generator=generator).to(x_syn.device)
            for rows in order.split(self.batch_train):
                xb = x_syn[rows]
                if self.aug is not None:
                    xb = self.aug(xb, generator)
                self._sgd_step(loss_fn(_forward(self._net, xb), y_syn[rows]))

    def _sgd_step(self, loss: torch.Tensor) -> None:
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()

    def _match(self, net, x_syn, y_syn, m: int, data: Dataset, generator) -> torch.Tensor:
        """DC's loss: sum over classes of D(real gradient, synthetic gradient)."""
        params = list(net.parameters())
        real_net = self._real_network(net)
        real_params = list(real_net.parameters())
        total = x_syn.new_zeros(())
        for c, x_real in enumerate(self._real_batches(data, generator, x_syn.device)):
            xr, xs = self._augment(x_real, x_syn[c * m : (c + 1) * m], generator)
            g_real = self._real_gradient(real_net, xr, c, real_params, generator)
            ys = y_syn[c * m : (c + 1) * m]
            g_syn = torch.autograd.grad(loss_fn(net(xs), ys), params, create_graph=True)
            total = total + gradient_distance(g_syn, g_real, self.metric, conv_only=self.conv_only)
        return total

    # The real side, the only part that touches the real data; apps/privacy overrides both
    # (Poisson-sampled batches; clipped, noised per-example gradients).

    def _real_batches(self, data: Dataset, generator, device) -> list[torch.Tensor]:
        """Every class's real batch for one matching step: `batch_real` images each."""
        n = self.batch_real
        return list(data.sample_per_class(n, generator).to(device).split(n))

    def _real_gradient(self, net, x_real, c: int, params, generator) -> list[torch.Tensor]:
        """Gradient (float32) of the mean loss of class `c`'s real batch."""
        y = torch.full((len(x_real),), c, dtype=torch.long, device=x_real.device)
        grads = torch.autograd.grad(F.cross_entropy(self._real_logits(net, x_real), y), params)
        return [g.float() for g in grads]

    def _augment(self, xr: torch.Tensor, xs: torch.Tensor, generator):
        """The siamese draw of one class: one for both whole batches ("batch", DC/DSA's and
        IDC's code), or synthetic example i sharing real example i's ("example")."""
        if self.aug is None:
            return xr, xs
        n, m = len(xr), len(xs)
        if self.siamese == "batch":
            draw = self.aug.draw(max(n, m), generator, shared=True)
            return self.aug.apply(xr, draw), self.aug.apply(xs, draw)
        draw = self.aug.draw(n, generator)
        rows = torch.arange(m).remainder(n) if m > n else None
        return self.aug.apply(xr, draw), self.aug.apply(xs, draw, index=rows)

    # --- inner state ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The current network, its optimiser and the counters: a resumed run is identical."""
        if self._pending is not None:
            return copy.deepcopy(self._pending)
        return {
            "age": self._age,
            "nets": self._nets,
            "net": None if self._net is None else copy.deepcopy(self._net.state_dict()),
            "opt": None if self._opt is None else copy.deepcopy(self._opt.state_dict()),
        }

    def load_state_dict(self, state: dict) -> None:
        # the network is rebuilt at the next call, when the data spec and device are known
        self._pending = copy.deepcopy(state)
        self._age, self._nets = state["age"], state["nets"]
        self._net = self._opt = None

    def _restore(self, data: Dataset, device) -> None:
        state, self._pending = self._pending, None
        if state["net"] is None:
            return
        net = restored_network(self.arch, data, self.net_config, state["net"], device)
        self._net, self._opt = net, self._optimiser(net)
        self._opt.load_state_dict(state["opt"])


class ClassContrastiveMatching(GradientMatching):
    """DCC (Lee et al., ICML 2022; survey eq. 8): match the mean gradient over all classes.

    Real side: the mean over classes of each class's mean loss, one gradient (computed in
    chunks of classes to bound memory; exact, as instance norm keeps examples independent).
    Synthetic side: the mean loss over every class's images, one gradient. DCC's bi-level
    warm-up keeps DC's per-class loss for the first `outer_warmup` networks and, within
    every network, for its first `inner_warmup` matching steps (DCC's code: 250 and 10).
    """

    name = "class_contrastive"
    # real images per forward pass of the real side: all classes at once on a GPU; one class
    # batch on a CPU, where 2,560 images' activations (6.6 GB) made the step 2.5x slower
    # than 256 at a time (experiments/dcc_chunk.py, gradient_speed.json)
    real_chunk: int | None = None  # None: by device, as below
    real_chunk_gpu = 2560
    real_chunk_cpu = 256

    def __init__(self, *, outer_warmup: int = 250, inner_warmup: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.outer_warmup = outer_warmup
        self.inner_warmup = inner_warmup

    def _match(self, net, x_syn, y_syn, m, data, generator):
        if self._nets - 1 < self.outer_warmup and self._age < self.inner_warmup:
            return super()._match(net, x_syn, y_syn, m, data, generator)
        k, n = data.spec.num_classes, self.batch_real
        x_real = data.sample_per_class(n, generator).to(x_syn.device)
        if self.aug is not None:  # one siamese draw per class, as in DCC's code
            pairs = [
                self._augment(x_real[c * n : (c + 1) * n], x_syn[c * m : (c + 1) * m], generator)
                for c in range(k)
            ]
            x_real = torch.cat([p[0] for p in pairs])
            x_syn = torch.cat([p[1] for p in pairs])
        params = list(net.parameters())
        real_net = self._real_network(net)
        real_params = list(real_net.parameters())
        y_real = torch.arange(k, device=x_real.device).repeat_interleave(n)
        g_real = [torch.zeros_like(p) for p in params]
        per_pass = self.real_chunk or (
            self.real_chunk_gpu if x_real.device.type == "cuda" else self.real_chunk_cpu
        )
        chunk = max(1, per_pass // n) * n
        for xr, yr in zip(x_real.split(chunk), y_real.split(chunk), strict=True):
            logits = self._real_logits(real_net, xr)
            part = F.cross_entropy(logits, yr, reduction="sum") / (k * n)
            for acc, g in zip(g_real, torch.autograd.grad(part, real_params), strict=True):
                acc += g
        g_syn = torch.autograd.grad(loss_fn(net(x_syn), y_syn), params, create_graph=True)
        return gradient_distance(g_syn, g_real, self.metric, conv_only=self.conv_only)


class RealTrainedMatching(GradientMatching):
    """IDC's matching (Kim et al., ICML 2022; survey eq. 9): the network learns from real data.

    Between matching steps the network takes `ceil(n_data / batch_net)` SGD steps (momentum
    0.9, weight decay 5e-4) on random real batches, per-example augmented with
    `net_dsa_strategy` and mixed by CutMix with probability `cutmix_p` (Beta(1, 1) areas), as
    IDC's `train_epoch` with `n_data`. Matching uses one augmentation draw for a class's whole
    real + synthetic batch (IDC's batch mode) and at most `batch_syn_max` synthetic images per
    class (a random subset when the class has more).
    """

    name = "real_trained_matching"

    def __init__(
        self,
        *,
        n_data: int = 500,
        batch_net: int = 64,
        momentum_net: float = 0.9,
        weight_decay_net: float = 5e-4,
        net_dsa_strategy: str | None = None,
        cutmix_p: float = 0.5,
        batch_syn_max: int = 128,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_data = n_data
        self.batch_net = batch_net
        self.momentum_net = momentum_net
        self.weight_decay_net = weight_decay_net
        self.net_aug = DSA(net_dsa_strategy) if net_dsa_strategy else None
        self.cutmix_p = cutmix_p
        self.batch_syn_max = batch_syn_max

    def _optimiser(self, net):
        return torch.optim.SGD(
            net.parameters(),
            lr=self.lr_net,
            momentum=self.momentum_net,
            weight_decay=self.weight_decay_net,
        )

    def _update_network(self, x_syn, y_syn, data, generator):
        x_all, y_all = data.x_train, data.y_train
        for _ in range(math.ceil(self.n_data / self.batch_net)):
            rows = torch.randint(len(x_all), (self.batch_net,), generator=generator)
            rows = rows.to(x_all.device)
            xb, yb = x_all[rows], y_all[rows]
            if self.net_aug is not None:
                xb = self.net_aug(xb, generator)
            if self.cutmix_p > 0 and float(torch.rand(1, generator=generator)) < self.cutmix_p:
                xb, yb2, keep = _cutmix(xb, yb, generator)
                out = _forward(self._net, xb)
                loss = keep * F.cross_entropy(out, yb) + (1 - keep) * F.cross_entropy(out, yb2)
            else:
                loss = F.cross_entropy(_forward(self._net, xb), yb)
            self._sgd_step(loss)

    def _match(self, net, x_syn, y_syn, m, data, generator):
        if m > self.batch_syn_max:
            k, b = data.spec.num_classes, self.batch_syn_max
            keep = torch.stack([torch.randperm(m, generator=generator)[:b] for _ in range(k)])
            rows = (keep + torch.arange(k).view(-1, 1) * m).flatten().to(x_syn.device)
            x_syn, y_syn, m = x_syn[rows], y_syn[rows], b
        return super()._match(net, x_syn, y_syn, m, data, generator)


def _cutmix(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
    """CutMix (Yun et al., ICCV 2019) with a Beta(1, 1) area: (mixed x, second labels, weight).

    The weight is the fraction of each image that keeps its own pixels (and label).
    """
    h, w = x.shape[-2:]
    lam, cy, cx = torch.rand(3, generator=generator).tolist()
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(cy * h), int(cx * w)
    y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
    keep = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    return x, y[perm], keep
