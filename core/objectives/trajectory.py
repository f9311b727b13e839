"""Trajectory matching: MTT and TESLA (survey section 2.3, eq. 10).

MTT: Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR
2022. Survey eq. (10):

    min_S  E_{theta*}  || theta_{t+N} - theta*_{t+M} ||^2 / || theta*_t - theta*_{t+M} ||^2,
    theta_{t+i+1} = theta_{t+i} - alpha grad l(A(S_i); theta_{t+i}),   theta_{t+0} = theta*_t,

where theta* is the trajectory of an expert trained on the real data (`datadistill.experts`), t a
random start epoch below `max_start_epoch`, M = `expert_epochs`, N = `syn_steps` SGD steps on
minibatches S_i of `batch_syn` synthetic examples under DSA augmentation A, and alpha the
learnt step size (`syn_lr`, initialised to the experts' learning rate). MTT backpropagates
through the whole unrolled training, so its memory grows linearly with N.

TESLA: Cui et al., "Scaling Up Dataset Distillation to ImageNet-1K with Constant Memory",
ICML 2023. The same loss and gradient with memory independent of N: a first pass runs the N
steps keeping only the parameters theta_i (no graph), then a second pass walks the steps
backwards, recomputing one step's graph at a time and carrying the adjoint
lambda_i = dL/dtheta_i:

    lambda_N = 2 (theta_N - theta*_{t+M}) / D,        D = || theta*_t - theta*_{t+M} ||^2,
    dL/dS_i  = -alpha d(lambda_{i+1} . g_i)/dS_i,     g_i = grad l(A(S_i); theta_i),
    dL/dalpha = -sum_i lambda_{i+1} . g_i,
    lambda_i = lambda_{i+1} - alpha H_i lambda_{i+1}  (H_i lambda: a Hessian-vector product).

TESLA's paper writes theta_N = theta_t - alpha sum_i g_i and differentiates each g_i with
respect to its own batch; its released code (justincui03/tesla, distill.py) holds the
adjoint at lambda_N for every step, i.e. drops the Hessian terms through which batch S_i
also moves the later steps. That is `first_order=True`. The default keeps the Hessian-vector
products, which makes the gradient equal to MTT's (tests/test_trajectory.py checks it to
1e-4) at the cost of one extra backward pass per step.

Memory constant in N needs more than dropping the graphs: the second pass needs theta_i for
i = N-1 .. 0, and TESLA's code keeps all N of them. Here at most `snapshots` are kept and
the rest recomputed forwards on Griewank's binomial checkpointing schedule
(`datadistill.objectives.revolve`); the first-order variant only needs lambda_N, so it replays the
student forwards from theta_0 instead.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from datadistill import nets
from datadistill.augment import DSA, AugParams
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.experts import ExpertBank, layout
from datadistill.objectives import revolve
from datadistill.objectives.base import Objective
from datadistill.params.base import Parameterisation
from datadistill.train import loss_fn

Plan = list[tuple[torch.Tensor, AugParams | None]]


class TrajectoryMatching(Objective):
    """MTT's loss (survey eq. 10), backpropagated through the unrolled student training.

    The parameterisation must carry the learnt step size as ``param.syn_lr`` (see
    `datadistill.methods.trajectory.WithLearntLR`); labels come from ``param.sample()``, hard or
    soft (soft ones are trained with cross-entropy against the distribution).

    Args:
        experts: the expert trajectories (`datadistill.experts.ExpertBank`).
        arch, net_config: the student network, which must have the experts' layout.
        syn_steps: N, SGD steps of the student per outer step.
        expert_epochs: M, how many expert epochs after the start the target lies.
        max_start_epoch: the start epoch is drawn uniformly from [0, max_start_epoch).
        batch_syn: synthetic examples per student step; 0 for all of them (MTT's default).
        dsa_strategy: DSA string applied to every student batch, or None.
    """

    name = "trajectory_matching"

    def __init__(
        self,
        *,
        experts: ExpertBank,
        arch: str = "convnet",
        net_config: dict | None = None,
        syn_steps: int = 20,
        expert_epochs: int = 2,
        max_start_epoch: int = 20,
        batch_syn: int = 0,
        dsa_strategy: str | None = None,
    ):
        if syn_steps < 1 or expert_epochs < 1 or max_start_epoch < 1 or batch_syn < 0:
            raise DistillError(
                "need syn_steps, expert_epochs and max_start_epoch >= 1 and batch_syn >= 0"
            )
        last = max_start_epoch - 1 + expert_epochs
        if last > experts.epochs:
            raise DistillError(
                f"max_start_epoch {max_start_epoch} + expert_epochs {expert_epochs} needs "
                f"experts of at least {last} epochs, but {experts.folder} holds "
                f"{experts.epochs}; lower them with --set or train longer experts"
            )
        self.experts = experts
        self.arch = arch
        self.net_config = dict(net_config or {})
        self.syn_steps = syn_steps
        self.expert_epochs = expert_epochs
        self.max_start_epoch = max_start_epoch
        self.batch_syn = batch_syn
        self.aug = DSA(dsa_strategy) if dsa_strategy else None
        self._net: torch.nn.Module | None = None

    def summary_extra(self) -> dict:
        return {"one_off": self.experts.one_off()}

    # --- the template ----------------------------------------------------------------------

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        x, y = param.sample()
        syn_lr = getattr(param, "syn_lr", None)
        if not isinstance(syn_lr, torch.Tensor):
            raise DistillError(
                "trajectory matching needs a learnt step size: wrap the parameterisation in "
                "datadistill.methods.trajectory.WithLearntLR"
            )
        net = self.network(data, x.device)
        start, target = self.segment(generator, x.device)
        plan = self.plan(len(x), generator)
        return self._matching_loss(net, x, y, syn_lr, start, target, plan)

    def network(self, data: Dataset, device) -> torch.nn.Module:
        """The student's architecture; its own weights are never used (`functional_call`)."""
        if self._net is None:
            with torch.random.fork_rng(devices=[]):  # its weights are never read: no RNG use
                net = nets.build(self.arch, data.spec, **self.net_config)
            if layout(net) != self.experts.layout:
                raise DistillError(
                    f"the experts in {self.experts.folder} are {self.experts.describe()}, which "
                    f"does not fit the student {self.arch} {self.net_config}; train experts for "
                    "it or point --set experts=... at matching ones"
                )
            if self.experts.dataset != data.spec.name:
                raise DistillError(
                    f"the experts in {self.experts.folder} were trained on "
                    f"{self.experts.dataset}, not {data.spec.name}"
                )
            self._net = net.train()
        return self._net.to(device)

    def segment(self, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """A random expert's parameters at a random start epoch t and at t + expert_epochs."""
        i = int(torch.randint(len(self.experts), (1,), generator=generator))
        t = int(torch.randint(self.max_start_epoch, (1,), generator=generator))
        start, target = self.experts.epochs_of(i, [t, t + self.expert_epochs])
        return start.to(device), target.to(device)

    def plan(self, n: int, generator: torch.Generator) -> Plan:
        """Each student step's rows and augmentation draw, drawn before any step runs.

        As MTT: the synthetic set is shuffled and cut into batches of `batch_syn`; a new
        shuffle starts when they are used up. Drawing everything first lets TESLA replay
        exactly the batches and augmentations of its first pass.
        """
        b = self.batch_syn or n
        plan: Plan = []
        chunks: list[torch.Tensor] = []
        for _ in range(self.syn_steps):
            if not chunks:
                chunks = list(torch.randperm(n, generator=generator).split(b))
            rows = chunks.pop(0)
            draw = self.aug.draw(len(rows), generator) if self.aug is not None else None
            plan.append((rows, draw))
        return plan

    # --- the inner training ----------------------------------------------------------------

    def step_loss(self, net, theta, x, y, rows, draw) -> torch.Tensor:
        """The student's training loss on one batch at flat parameters `theta`."""
        rows = rows.to(x.device)
        xb = x[rows]
        if draw is not None:
            xb = self.aug.apply(xb, draw)
        return loss_fn(functional_call(net, unflatten(net, theta), (xb,)), y[rows])

    def _matching_loss(self, net, x, y, syn_lr, start, target, plan) -> torch.Tensor:
        theta = start.clone().requires_grad_(True)
        for rows, draw in plan:
            g = torch.autograd.grad(
                self.step_loss(net, theta, x, y, rows, draw), theta, create_graph=True
            )[0]
            theta = theta - syn_lr * g
        return ((theta - target) ** 2).sum() / ((start - target) ** 2).sum()


class ConstantMemoryMatching(TrajectoryMatching):
    """TESLA's constant-memory computation of MTT's loss and gradient (module docstring).

    Memory: one student step's double-backward graph at a time, plus at most `snapshots`
    flat parameter vectors theta_i (and the one in hand), whatever syn_steps N is. The
    backward pass needs theta_{N-1}, ..., theta_0 in that order; those not kept are
    recomputed forwards from the nearest kept one on the binomial schedule of
    `datadistill.objectives.revolve` (Griewank & Walther's revolve), which runs the fewest extra
    student steps: none when snapshots >= N - 1, about N more (each step run forwards at
    most twice) while N <= (s + 1)(s + 2) / 2, and a few N more beyond.

    Trade-off, measured in experiments/results/trajectory_memory.json (Fashion-MNIST,
    ConvNet-3, IPC 1, one CPU thread): `snapshots=0` keeps every theta_i as TESLA's code does,
    no recomputation, and its peak memory grows by one parameter vector (1.2 MB here) per
    step, doubling from N = 10 to 80; the default 10 keeps the peak flat (within 4%) for
    about 1.25x the time per iteration at N = 40 and 1.5x at N = 80, where it reruns 83
    student steps. Take 0 when N x P floats fit easily; the default when they do not, or
    when N is large.

    The first-order variant needs every theta_i only once and in any order, against the
    fixed adjoint lambda_N: its second pass replays the student forwards from theta_0, one
    vector in hand, at no extra cost; `snapshots` does not apply to it.

    Args:
        first_order: drop the Hessian-vector products as TESLA's released code does
            (cheaper, but then the gradient is not MTT's).
        snapshots: how many parameter vectors theta_i the backward pass may keep (theta_0
            among them); 0 keeps all N, the fastest when memory allows.
    """

    name = "trajectory_matching_constant_memory"

    def __init__(self, *, first_order: bool = False, snapshots: int = 10, **kwargs):
        super().__init__(**kwargs)
        if snapshots < 0:
            raise DistillError(
                f"snapshots must be >= 0 (0 keeps every step's parameters), got {snapshots}"
            )
        self.first_order = first_order
        self.snapshots = snapshots

    def _matching_loss(self, net, x, y, syn_lr, start, target, plan) -> torch.Tensor:
        return _ReplayedUnroll.apply(x, y, syn_lr, (self, net, start, target, plan))

    def loss_and_grads(self, net, x, y, lr, start, target, plan, need):
        """(loss, dL/dx, dL/dy, dL/dlr) by the two passes; `need` = which of x, y, lr need it."""
        adj = _Adjoint(x, y, lr, start, target, need)
        if not any(need):
            adj.set_end(self._advance(net, adj, plan, start, 0, len(plan)))
        elif self.first_order:
            adj.set_end(self._advance(net, adj, plan, start, 0, len(plan)))
            theta = start
            for i in range(len(plan)):  # pass 2, forwards again: lambda_N is all it needs
                theta = self._reverse_step(net, adj, plan, theta, i)
        else:
            self._reverse_exact(net, adj, plan, start)
        return adj.loss, adj.gx, adj.gy, adj.glr

    def _reverse_exact(self, net, adj: _Adjoint, plan: Plan, start: torch.Tensor) -> None:
        """Pass 2 backwards, on the revolve schedule: the first step it reverses is N-1,
        whose update gives theta_N and so the loss and lambda_N."""
        n = len(plan)
        kept = _Snapshots(start, self.snapshots or max(1, n - 1))

        def forwards(theta, first: int, stop: int):
            return self._advance(net, adj, plan, theta, first, stop)

        def reverse(i: int, theta_i) -> None:
            self._reverse_step(net, adj, plan, theta_i, i)

        revolve.replay(n, kept.count, kept, forwards, reverse)

    def _advance(self, net, adj: _Adjoint, plan: Plan, theta, first: int, stop: int):
        """theta_stop from theta_first: student steps first .. stop-1, keeping no graph."""
        for i in range(first, stop):
            rows, draw = plan[i]
            theta = theta.detach().requires_grad_(True)
            g = torch.autograd.grad(self.step_loss(net, theta, adj.x, adj.y, rows, draw), theta)[0]
            with torch.no_grad():
                theta = theta - adj.lr * g
        return theta.detach()

    def _reverse_step(self, net, adj: _Adjoint, plan: Plan, theta_i, i: int) -> torch.Tensor:
        """Step i's contribution to the gradients, from one step's graph; returns theta_{i+1}.

        Adds -lr d(lambda_{i+1} . g_i)/d(x, y) and -lambda_{i+1} . g_i, and (exact variant)
        moves the adjoint to lambda_i = lambda_{i+1} - lr H_i lambda_{i+1}.
        """
        rows, draw = plan[i]
        theta = theta_i.detach().requires_grad_(True)
        xs = adj.x.detach().requires_grad_(adj.need[0])
        ys = adj.y.detach().requires_grad_(adj.need[1])
        wrt = [t for t, n in ((xs, adj.need[0]), (ys, adj.need[1])) if n]
        if not self.first_order:
            wrt.append(theta)
        g = torch.autograd.grad(
            self.step_loss(net, theta, xs, ys, rows, draw), theta, create_graph=bool(wrt)
        )[0]
        with torch.no_grad():
            theta_next = theta_i - adj.lr * g
        if adj.lam is None:  # step N-1 of the exact pass: theta_N is its update
            adj.set_end(theta_next)
        s = (adj.lam * g).sum()  # lambda_{i+1} . g_i
        grads = list(torch.autograd.grad(s, wrt)) if wrt else []
        if adj.need[0]:
            adj.gx -= adj.lr * grads.pop(0)
        if adj.need[1]:
            adj.gy -= adj.lr * grads.pop(0)
        if not self.first_order:
            adj.lam.sub_(adj.lr * grads.pop(0))  # in place: one block for the whole pass
        adj.glr -= s.detach()
        return theta_next


class _Snapshots:
    """The kept theta_i, in `count` parameter vectors allocated once (theta_0 is the caller's).

    Allocating them up front, before any step's temporaries, keeps long-lived blocks out of
    the allocator's churn: with a fresh block per kept theta_i, glibc's heap left holes
    between them and the process's peak memory grew with syn_steps (at N = 40, glibc's
    defaults: about 10% above the pool's, measured once) while the tensors alive did not.
    """

    def __init__(self, start: torch.Tensor, count: int):
        self.count = count
        self._held = {0: start}
        self._free = [torch.empty_like(start) for _ in range(count - 1)]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._held[i]

    def __setitem__(self, i: int, theta: torch.Tensor) -> None:
        block = self._free.pop()  # the schedule never holds more than `count`
        self._held[i] = block.copy_(theta)

    def pop(self, i: int, default=None) -> None:
        """Forget theta_i if kept; its block (not theta_0, the caller's) is free for the next.
        Returns nothing: the block is about to hold another theta."""
        block = self._held.pop(i, None)
        if block is not None and i != 0:
            self._free.append(block)


class _Adjoint:
    """What the backward pass carries: inputs, loss, lambda and the gradients so far."""

    def __init__(self, x, y, lr, start, target, need):
        self.x, self.y, self.lr, self.target, self.need = x, y, lr, target, need
        self.denom = ((start - target) ** 2).sum()
        self.loss: torch.Tensor | None = None
        self.lam: torch.Tensor | None = None  # lambda_{i+1} = dL/dtheta_{i+1}
        self.gx = torch.zeros_like(x) if need[0] else None
        self.gy = torch.zeros_like(y) if need[1] else None
        self.glr = torch.zeros_like(lr)

    def set_end(self, theta_n: torch.Tensor) -> None:
        """The loss (survey eq. 10) and lambda_N = 2 (theta_N - theta*_{t+M}) / D."""
        diff = theta_n - self.target
        self.loss = (diff**2).sum() / self.denom
        self.lam = 2 * diff / self.denom


class _ReplayedUnroll(torch.autograd.Function):
    """Returns the matching loss; its backward hands out the gradients of the two passes."""

    @staticmethod
    def forward(ctx, x, y, lr, bundle):
        objective, net, start, target, plan = bundle
        need = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        with torch.enable_grad():
            loss, gx, gy, glr = objective.loss_and_grads(
                net, x.detach(), y.detach(), lr.detach(), start, target, plan, need
            )
        ctx.save_for_backward(*(g if g is not None else torch.empty(0) for g in (gx, gy, glr)))
        ctx.need = need
        return loss.detach()

    @staticmethod
    def backward(ctx, grad_out):
        gx, gy, glr = ctx.saved_tensors
        need = ctx.need
        return (
            grad_out * gx if need[0] else None,
            grad_out * gy if need[1] else None,
            grad_out * glr if need[2] else None,
            None,
        )


def unflatten(net: torch.nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views of the flat vector `theta`, one per parameter of `net` (named_parameters order)."""
    out, offset = {}, 0
    for name, p in net.named_parameters():
        n = p.numel()
        out[name] = theta[offset : offset + n].view(p.shape)
        offset += n
    return out
