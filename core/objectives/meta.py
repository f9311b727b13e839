"""Meta-model matching: DD, KIP, RFAD and FRePO (survey section 2.1, eqs. 3-6).

Survey eq. (3): min_S L_T(theta^S), where theta^S is a model trained on the summary S and
L_T its loss on the real data T. The four objectives differ in how theta^S is obtained
and differentiated:

- DD (Wang et al., "Dataset Distillation", arXiv 1811.10959, 2018), survey eq. (4):
  theta^S is T steps of gradient descent from a random init, theta_{t+1} = theta_t -
  eta grad l(S; theta_t), and the meta-gradient back-propagates through the unrolled
  steps (BPTT), optionally only through the last `truncate` of them (truncated BPTT).
- KIP (Nguyen, Chen & Lee, "Dataset Meta-Learning from Kernel Ridge-Regression", ICLR
  2021), survey eq. (5): theta^S is replaced by kernel ridge regression with the NTK of
  an infinitely wide network, L = 1/2 || y_T - K_TS (K_SS + lambda I)^{-1} y_S ||^2.
- RFAD (Loo et al., "Efficient Dataset Distillation using Random Feature Approximation",
  NeurIPS 2022): eq. (5) with the random-feature NNGP of random ConvNets, drawn anew every
  step, and a cross-entropy on the regression outputs scaled by a learnt temperature
  ("Platt scaling") instead of the squared error.
- FRePO (Zhou, Nezhadarya & Ba, "Dataset Distillation using Neural Feature Regression",
  NeurIPS 2022), survey eq. (6): eq. (5) with K = phi phi^T, phi the features of one
  network of a pool; each pool network is trained on S one step at a time and
  re-initialised after a maximum number of steps.

Learnt scalars (DD's inner learning rate, RFAD's temperature) belong to the objective, not
to the summary's parameterisation; the outer loop's backward leaves their gradient in
`.grad`, and the objective applies it with its own small optimiser at the start of its
next call, before anything else reads them. That is the same update the outer optimiser
would make at the end of the step, and `state_dict` carries the pending gradient so a
resumed run is exact.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call

from datadistill import nets
from datadistill.data import Dataset
from datadistill.kernels import FCNTK, ConvRandomFeatures, Kernel, NetworkFeatures
from datadistill.kernels.krr import centred_targets, krr
from datadistill.objectives.base import Objective
from datadistill.objectives.distribution import fresh_network
from datadistill.objectives.unroll import advance, unroll
from datadistill.params.base import Parameterisation
from datadistill.train import loss_fn


def real_batch(data: Dataset, n: int, generator: torch.Generator, device, dtype=torch.float32):
    """`n` training images drawn uniformly without replacement (all of them if fewer), as
    DD, KIP and RFAD sample their target batches; returns (x, class ids)."""
    total = len(data.y_train)
    rows = torch.randperm(total, generator=generator)[: min(n, total)]
    rows = rows.to(data.x_train.device)
    return data.x_train[rows].to(device, dtype), data.y_train[rows].to(device)


class LearntScalar:
    """A positive scalar the objective learns itself: value = exp(log), Adam on the log.

    `step()` applies the gradient the outer loop's backward left in `.grad` (see module
    docstring). With `learn=False` it is a constant.
    """

    def __init__(self, value: float, *, lr: float, learn: bool):
        if value <= 0:
            raise ValueError(f"a log-parameterised value must be positive, got {value}")
        self.log = torch.tensor(math.log(value), dtype=torch.float64, requires_grad=learn)
        self.opt = torch.optim.Adam([self.log], lr=lr) if learn else None

    def step(self) -> None:
        if self.opt is not None and self.log.grad is not None:
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)

    def value(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """exp(log) on `device`, differentiable back to the log."""
        log = self.log.to(dtype=dtype)
        return (log if device is None else log.to(device)).exp()

    def __float__(self) -> float:
        return math.exp(float(self.log.detach()))

    def state_dict(self) -> dict:
        grad = self.log.grad
        return {
            "log": self.log.detach().clone(),
            "grad": None if grad is None else grad.detach().clone(),
            "opt": None if self.opt is None else copy.deepcopy(self.opt.state_dict()),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.log.copy_(state["log"])
        self.log.grad = None if state["grad"] is None else state["grad"].to(self.log.device)
        if self.opt is not None and state["opt"] is not None:
            self.opt.load_state_dict(state["opt"])


# --- DD: back-propagation through the unrolled inner training (survey eq. 4) ----------------


class BackpropThroughTime(Objective):
    """DD's meta-loss: train a fresh network on S for T steps, then its loss on real data.

    The inner loop follows DD: every step takes `images_per_step` synthetic images of each
    class (DD: 1), so one pass over S takes ceil(ipc / images_per_step) steps, and
    `inner_epochs` passes (DD: 3) make T steps; `images_per_step` 0 uses all of S at every
    step. The step is SGD with the learnt rate eta (DD learns one per step; one shared rate
    here, so that it can travel with the summary as its training learning rate) and
    optional momentum. The network is drawn afresh every call (DD's "unknown init").

    Args:
        arch, net_config: the inner network.
        batch_real: real images in the meta-loss (DD: 1024).
        inner_epochs, images_per_step: the inner schedule (above).
        lr: initial inner learning rate (DD: 0.02), log-parameterised.
        learn_lr: learn it (DD does), with Adam at `lr_lr` on its log.
        momentum: inner SGD momentum (DD: 0, plain gradient descent).
        truncate: back-propagate through the last `truncate` steps only (0: all, DD);
            earlier steps run without a graph, which bounds memory for long unrolls.
        recompute: keep no graph across steps and rebuild one step's at a time on the way
            back (`datadistill.objectives.unroll`): the exact gradient of the full unroll in the
            memory of one step's graph plus the T states, for one more forward and backward
            per step. For long unrolls over many images (LinBa's 150 steps).
        snapshots: with `recompute`, keep at most this many states (0: all T).
        network: (data, generator, device) -> a fresh inner network, in place of
            `arch`: learners that are not image networks (the text classifiers of
            `datadistill.text`, Sucholutsky & Schonlau 2021) reuse the same unrolled loop.
    """

    name = "bptt"

    def __init__(
        self,
        *,
        arch: str = "convnet",
        net_config: dict | None = None,
        batch_real: int = 1024,
        inner_epochs: int = 3,
        images_per_step: int = 1,
        lr: float = 0.02,
        learn_lr: bool = True,
        lr_lr: float = 0.01,
        momentum: float = 0.0,
        truncate: int = 0,
        recompute: bool = False,
        snapshots: int = 0,
        network: Callable[[Dataset, torch.Generator, torch.device], torch.nn.Module] | None = None,
    ):
        if inner_epochs < 1 or images_per_step < 0 or truncate < 0 or snapshots < 0:
            raise ValueError(
                "need inner_epochs >= 1, images_per_step >= 0, truncate >= 0 and snapshots "
                f">= 0, got {inner_epochs}, {images_per_step}, {truncate}, {snapshots}"
            )
        if "bn" in arch.split("_"):
            raise ValueError("the unrolled inner loop needs a per-example norm, not batch norm")
        self.arch = arch
        self.net_config = net_config or {}
        self.batch_real = batch_real
        self.inner_epochs = inner_epochs
        self.images_per_step = images_per_step
        self.momentum = momentum
        self.truncate = truncate
        self.recompute = recompute
        self.snapshots = snapshots
        self.network = network
        self.lr = LearntScalar(lr, lr=lr_lr, learn=learn_lr)

    def schedule(self, num_classes: int, ipc: int) -> list[torch.Tensor]:
        """Rows of S used at each inner step (class-ordered rows, see Parameterisation)."""
        per = self.images_per_step or ipc
        starts = range(0, ipc, per)
        base = torch.arange(num_classes).view(-1, 1) * ipc
        one_pass = [(base + torch.arange(s, min(s + per, ipc))).flatten() for s in starts]
        return one_pass * self.inner_epochs

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        self.lr.step()
        with torch.enable_grad():  # the inner loop differentiates, even for a no_grad caller
            return self._unrolled(param, data, generator)

    def _unrolled(self, param: Parameterisation, data: Dataset, generator) -> torch.Tensor:
        x_syn, y_syn = param.sample()
        device, dtype = x_syn.device, x_syn.dtype
        if self.network is not None:
            net = self.network(data, generator, device).to(dtype)
        else:
            net = fresh_network(self.arch, data, generator, device, **self.net_config).to(dtype)
        net.train()
        names = [k for k, _ in net.named_parameters()]
        state = tuple(v.detach() for _, v in net.named_parameters())
        if self.momentum:
            state += tuple(torch.zeros_like(v) for v in state)  # velocity 0: v_1 = g_0
        rows = [r.to(device) for r in self.schedule(data.spec.num_classes, param.images_per_class)]
        step = self._step_fn(net, names, rows)
        inputs = (x_syn, y_syn, self.lr.value(device, dtype))
        first = max(len(rows) - self.truncate, 0) if self.truncate else 0
        if first:  # outside the back-propagated window: no graph, constant inputs
            state = advance(step, state, tuple(t.detach() for t in inputs), 0, first)
        if self.recompute:
            shifted = lambda t, s, i, d: step(first + t, s, i, d)  # noqa: E731
            state = unroll(shifted, state, inputs, len(rows) - first, self.snapshots)
        else:
            for t in range(first, len(rows)):
                state = step(t, state, inputs, True)
        params = dict(zip(names, state[: len(names)], strict=True))
        x_real, y_real = real_batch(data, self.batch_real, generator, device, dtype)
        return F.cross_entropy(functional_call(net, params, (x_real,)), y_real)

    def _step_fn(self, net, names: list[str], rows: list[torch.Tensor]):
        """One inner SGD step (with momentum if set) as a function of (state, inputs)."""
        k = len(names)

        def step(t, state, inputs, differentiable):
            x_syn, y_syn, lr = inputs
            params = [p if p.requires_grad else p.detach().requires_grad_() for p in state[:k]]
            xs, ys = x_syn[rows[t]], y_syn[rows[t]]
            inner = loss_fn(functional_call(net, dict(zip(names, params, strict=True)), (xs,)), ys)
            grads = torch.autograd.grad(inner, params, create_graph=differentiable)
            velocity = ()
            if self.momentum:
                velocity = tuple(
                    self.momentum * v + g for v, g in zip(state[k:], grads, strict=True)
                )
                grads = velocity
            return (*(p - lr * g for p, g in zip(params, grads, strict=True)), *velocity)

        return step

    def summary_extra(self) -> dict:
        """The learnt inner learning rate, to train on the summary with (as MTT's syn_lr)."""
        return {"syn_lr": float(self.lr)}

    def state_dict(self) -> dict:
        return {"lr": self.lr.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.lr.load_state_dict(state["lr"])


# --- kernel ridge regression: KIP, RFAD, FRePO (survey eqs. 5-6) -----------------------------


class KernelRegression(Objective):
    """The template of eq. (5): regress a real batch from S with a kernel, score the fit.

    Subclasses choose the kernel (`kernel`) and the loss on the predictions (`score`);
    targets are centred one-hot labels on both sides (`centred_targets`).

    Args:
        batch_real: real images regressed per step.
        reg: ridge relative to the mean diagonal of K_SS (see `datadistill.kernels.krr`).
    """

    name = "kernel_regression"

    def __init__(self, *, batch_real: int, reg: float):
        self.batch_real = batch_real
        self.reg = reg

    def kernel(self, data: Dataset, generator, device) -> Kernel:
        raise NotImplementedError

    def score(self, pred: torch.Tensor, y_real: torch.Tensor, num_classes: int) -> torch.Tensor:
        """KIP's and FRePO's loss: 1/2 mean squared error to the centred one-hot labels."""
        return 0.5 * ((pred - centred_targets(y_real, num_classes)) ** 2).mean()

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        x_syn, y_syn = param.sample()
        k = data.spec.num_classes
        kernel = self.kernel(data, generator, x_syn.device)
        x_real, y_real = real_batch(data, self.batch_real, generator, x_syn.device, x_syn.dtype)
        k_ss, k_ts = kernel.gram(x_syn, x_real)
        pred = krr(k_ss, centred_targets(y_syn, k), k_ts, reg=self.reg)
        return self.score(pred, y_real, k).to(x_syn.dtype)

    def summary_extra(self) -> dict:
        """The labels were fitted by regression: train on them with the squared error."""
        return {"label_loss": "mse"}


class KernelInducingPoints(KernelRegression):
    """KIP: eq. (5) with the NTK of a fully connected ReLU network and the squared error.

    KIP's code (google-research/kip): FC NTK, depth 1, s_w^2 = 2, s_b^2 = 0.01, NTK
    parameterisation, reg 1e-6, target batches of 5000 class-balanced images (uniform
    here), centred one-hot labels.
    """

    name = "kip"

    def __init__(
        self,
        *,
        depth: int = 1,
        w_var: float = 2.0,
        b_var: float = 0.01,
        batch_real: int = 5000,
        reg: float = 1e-6,
    ):
        super().__init__(batch_real=batch_real, reg=reg)
        self._kernel = FCNTK(depth=depth, w_var=w_var, b_var=b_var)

    def kernel(self, data, generator, device):
        return self._kernel


class RandomFeatureRegression(KernelRegression):
    """RFAD: eq. (5) with the random-feature ConvNet NNGP and Platt-scaled cross-entropy.

    The kernel (`ConvRandomFeatures`) is drawn afresh every call. With `platt`, the loss is
    the cross-entropy of exp(log_t) * predictions (RFAD: log_t starts at 0 and is learnt
    with its own learning rate 1e-2); otherwise KIP's squared error.

    Args:
        n_models, width, depth, w_var, b_var: the random ConvNets (RFAD: 8, 256, 3, 2, 0.01).
        batch_real: real images per step (RFAD: 4 batches of 1280).
        reg: ridge (RFAD's `jit`: 5e-3).
        platt, learn_temperature, temperature_lr: the Platt scaling.
    """

    name = "rfad"

    def __init__(
        self,
        *,
        n_models: int = 8,
        width: int = 256,
        depth: int = 3,
        w_var: float = 2.0,
        b_var: float = 0.01,
        batch_real: int = 5120,
        reg: float = 5e-3,
        platt: bool = True,
        learn_temperature: bool = True,
        temperature_lr: float = 1e-2,
    ):
        super().__init__(batch_real=batch_real, reg=reg)
        self.kernel_config = {
            "n_models": n_models,
            "width": width,
            "depth": depth,
            "w_var": w_var,
            "b_var": b_var,
        }
        self.platt = platt
        self.temperature = LearntScalar(1.0, lr=temperature_lr, learn=platt and learn_temperature)

    def kernel(self, data, generator, device):
        c, size = data.spec.channels, data.spec.size
        return ConvRandomFeatures(c, size, generator=generator, **self.kernel_config).to(device)

    def loss(self, param, data, generator, step):
        self.temperature.step()
        return super().loss(param, data, generator, step)

    def score(self, pred, y_real, num_classes):
        if not self.platt:
            return super().score(pred, y_real, num_classes)
        return F.cross_entropy(self.temperature.value(pred.device, pred.dtype) * pred, y_real)

    def state_dict(self) -> dict:
        return {"temperature": self.temperature.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.temperature.load_state_dict(state["temperature"])


class FeatureRegression(KernelRegression):
    """FRePO: eq. (6), kernel regression on the features of a network from a model pool.

    FRePO's algorithm (Zhou et al., 2022, Alg. 1; its code `lib/datadistillation/frepo.py`):
    a pool of `pool_size` networks (10), created with staggered step counts
    (max_steps // pool_size * i) so they do not all reset together. Every step one network
    is drawn uniformly, the meta-loss is the regression of a real batch on its features
    (MSE to centred labels), and after the summary's update that network takes one Adam
    step (lr 3e-4) on up to `online_batch` synthetic examples (1000) with the squared error
    to their labels; a network past `max_steps` (100) is re-initialised instead. Here the
    network's step happens at the start of the next call, on the already updated summary,
    which is the same order.

    Args:
        arch, net_config: the pool networks (FRePO: ConvNet, width 128, depth 3, no norm).
        pool_size, max_steps, online_lr, online_batch: the pool (above).
        batch_real: real images per step (FRePO: 1024).
        reg: ridge (FRePO: 1e-6).
    """

    name = "frepo"

    def __init__(
        self,
        *,
        arch: str = "convnet_nonorm",
        net_config: dict | None = None,
        pool_size: int = 10,
        max_steps: int = 100,
        online_lr: float = 3e-4,
        online_batch: int = 1000,
        batch_real: int = 1024,
        reg: float = 1e-6,
    ):
        super().__init__(batch_real=batch_real, reg=reg)
        if pool_size < 1 or max_steps < 1:
            raise ValueError(f"need pool_size, max_steps >= 1, got {pool_size}, {max_steps}")
        self.arch = arch
        self.net_config = net_config or {}
        self.pool_size = pool_size
        self.max_steps = max_steps
        self.online_lr = online_lr
        self.online_batch = online_batch
        self._nets: list[torch.nn.Module] = []
        self._opts: list[torch.optim.Optimizer] = []
        self._steps: list[int] = []
        self._last: int | None = None  # the network used by the previous call
        self._pending: dict | None = None  # loaded state, rebuilt once spec and device are known

    def _new(self, data: Dataset, generator, device, steps: int) -> tuple:
        net = fresh_network(self.arch, data, generator, device, **self.net_config)
        net.requires_grad_(False)  # only the online step trains it; the meta-loss must not
        return net, torch.optim.Adam(net.parameters(), lr=self.online_lr), steps

    def _online_step(self, i: int, x_syn, y_syn, data: Dataset, generator) -> None:
        if self._steps[i] >= self.max_steps:
            self._nets[i], self._opts[i], self._steps[i] = self._new(
                data, generator, x_syn.device, 0
            )
            return
        n = len(x_syn)
        rows = torch.randperm(n, generator=generator)[: self.online_batch].to(x_syn.device)
        net = self._nets[i]
        net.train().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(net(x_syn[rows]), y_syn[rows], "mse")
        loss.backward()
        self._opts[i].step()
        self._opts[i].zero_grad(set_to_none=True)
        net.requires_grad_(False)
        self._steps[i] += 1

    def loss(self, param, data, generator, step):
        x_syn, y_syn = param.sample()
        device = x_syn.device
        if self._pending is not None:
            self._restore(data, device)
        if not self._nets:
            for i in range(self.pool_size):
                net, opt, steps = self._new(
                    data, generator, device, self.max_steps // self.pool_size * i
                )
                self._nets.append(net)
                self._opts.append(opt)
                self._steps.append(steps)
        elif self._last is not None:
            self._online_step(self._last, x_syn.detach(), y_syn.detach(), data, generator)
        self._last = int(torch.randint(self.pool_size, (1,), generator=generator))
        return super().loss(param, data, generator, step)

    def kernel(self, data, generator, device):
        net = self._nets[self._last]
        net.eval()
        return NetworkFeatures(net)

    # --- inner state: the pool ----------------------------------------------------------------

    def state_dict(self) -> dict:
        """Every pool network, its optimiser and step count, and the last network drawn."""
        if self._pending is not None:
            return copy.deepcopy(self._pending)
        return {
            "nets": [copy.deepcopy(n.state_dict()) for n in self._nets],
            "opts": [copy.deepcopy(o.state_dict()) for o in self._opts],
            "steps": list(self._steps),
            "last": self._last,
        }

    def load_state_dict(self, state: dict) -> None:
        self._pending = copy.deepcopy(state)
        self._nets, self._opts, self._steps = [], [], []
        self._last = state["last"]

    def _restore(self, data: Dataset, device) -> None:
        state, self._pending = self._pending, None
        for net_state, opt_state, steps in zip(
            state["nets"], state["opts"], state["steps"], strict=True
        ):
            with torch.random.fork_rng(devices=[]):  # weights are overwritten: no RNG use
                net = nets.build(self.arch, data.spec, **self.net_config).to(device)
            net.load_state_dict(net_state)
            net.requires_grad_(False)
            opt = torch.optim.Adam(net.parameters(), lr=self.online_lr)
            opt.load_state_dict(opt_state)
            self._nets.append(net)
            self._opts.append(opt)
            self._steps.append(steps)
