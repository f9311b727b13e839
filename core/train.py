"""The one training loop, and `test`. Every method, baseline and app trains through here.

The schedule is the evaluation protocol of DC/DSA/DM (Zhao et al., ICLR 2021; Zhao &
Bilen, ICML 2021): SGD with momentum 0.9, learning rate 0.01, weight decay 5e-4, batch
256, learning rate divided by 10 at half of the epochs, DSA on the training batches.
Published numbers use 1000 epochs; 300 is the quick setting.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from datadistill import accel, checkpoint
from datadistill.augment import DSA
from datadistill.errors import DistillError


@dataclass(frozen=True)
class TrainConfig:
    """How a fresh model is trained on a (synthetic or real) set."""

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    dsa: bool = True
    dsa_strategy: str | None = None  # None: the dataset's strategy
    label_loss: str = "ce"  # "ce" (hard or soft targets), "mse" (regression targets), "mse_mean"
    # cap on SGD steps: a summary larger than a batch then trains fewer epochs, so a
    # factorised summary of 1,000 images costs no more than a batch-sized one (None: no cap)
    max_steps: int | None = None
    # "fp32"; "bf16": bfloat16 autocast, channels-last, float32 weights (mixed precision);
    # "auto": bf16 where datadistill.accel.fast_bf16. The evaluation protocol stays fp32; experts
    # use auto (a ConvNet step on 256 Fashion-MNIST images, 1 thread, AVX512-BF16: 0.604 -> 0.329 s,
    # experiments/training_precision.py)
    precision: str = "fp32"

    def with_(self, **changes) -> TrainConfig:
        return replace(self, **changes)

    def epochs_for(self, n: int) -> int:
        """Epochs actually run on `n` examples: `epochs`, fewer if `max_steps` binds (whole
        epochs, at least one)."""
        if self.max_steps is None:
            return self.epochs
        per_epoch = max(1, math.ceil(n / self.batch_size))
        return max(1, min(self.epochs, self.max_steps // per_epoch))


QUICK = TrainConfig(epochs=300)
PUBLISHED = TrainConfig(epochs=1000)


def loss_fn(logits: torch.Tensor, y: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Cross-entropy for int labels or target distributions; squared error for regression
    targets (KIP's, RFAD's and FRePO's learnt labels).

    The squared error is 1/2 ||f(x) - y||^2 per example, summed over classes and averaged
    over the batch: its gradient per logit, f(x) - y, has the scale of cross-entropy's,
    softmax(f(x)) - y, so the protocol's learning rate (tuned for cross-entropy) trains both
    as far. The per-element mean (`F.mse_loss`) divides that gradient by the number of
    classes, and 300 epochs of SGD at 0.01 then leave the network undertrained: on digits
    it cost KIP 49 and 5, RFAD 18 and 7, FRePO 11 and 6 points at IPC 1 and 10
    (experiments/results/label_loss_digits.json). On Fashion-MNIST the two agree within 1.3
    points for KIP and RFAD at IPC 1; KIP at IPC 10 lost 4.1 (68.95 -> 64.85, meta_fmnist).
    """
    if kind in ("mse", "mse_mean"):
        if y.dim() == 1:
            y = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        if kind == "mse_mean":  # the per-element mean, kept for experiments/label_loss.py
            return F.mse_loss(logits, y)
        return 0.5 * (logits - y).pow(2).sum(1).mean()
    if y.dim() == 2 and y.is_floating_point():
        return F.cross_entropy(logits, y.softmax(1) if (y < 0).any() else y)
    return F.cross_entropy(logits, y)


def train(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: TrainConfig,
    dsa_strategy: str,
    generator: torch.Generator,
    on_epoch: Callable[[int, float], None] | None = None,
    resume_file: Path | None = None,
) -> nn.Module:
    """Train `net` in place on (x, y) with the protocol's schedule; returns it.

    Args:
        x, y: training images (normalised) and labels (int [n] or float [n, K]), on the
            net's device.
        dsa_strategy: the dataset's DSA strategy, used when `config.dsa` and
            `config.dsa_strategy` is None.
        generator: CPU generator for shuffling and augmentation draws (determinism).
        on_epoch: called as on_epoch(epoch, mean_loss) after each epoch (progress bars).
        resume_file: where the training state (weights, optimiser, schedule, generator) is
            kept after every epoch and read back at the start, so a long training (the full
            training set: hours on a CPU) stopped anywhere goes on bit for bit.
    """
    accel.tune_allocator()
    accel.check_precision("training precision", config.precision)
    mixed = accel.precision_dtype(config.precision, x.device) == torch.bfloat16
    if mixed:
        net.to(memory_format=torch.channels_last)
    aug = DSA(config.dsa_strategy or dsa_strategy) if config.dsa else None
    opt = torch.optim.SGD(
        net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    n = len(x)
    epochs = config.epochs_for(n)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, epochs // 2)], gamma=0.1)
    first = 0
    if resume_file is not None and Path(resume_file).exists():
        first = _resume(resume_file, net, opt, sched, generator, epochs=epochs, n=n)
    net.train()
    model = accel.compile_module(net)
    for epoch in range(first, epochs):
        order = torch.randperm(n, generator=generator).to(x.device)
        total = torch.zeros((), device=x.device)
        for start in range(0, n, config.batch_size):
            rows = order[start : start + config.batch_size]
            xb, yb = x[rows], y[rows]
            if aug is not None:
                xb = aug(xb, generator)
            if mixed and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=mixed):
                logits = model(xb)
            loss = loss_fn(logits.float(), yb, config.label_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(rows)
        sched.step()
        if resume_file is not None:
            state = {"epoch": epoch + 1, "epochs": epochs, "n": n, "net": net.state_dict()}
            state |= {"opt": opt.state_dict(), "generator": generator.get_state()}
            sched_state = sched.state_dict()
            state["sched"] = {**sched_state, "milestones": dict(sched_state["milestones"])}
            checkpoint.save_state(Path(resume_file), state)
        if on_epoch is not None:
            on_epoch(epoch, float(total) / n)
    return net


def _resume(path, net, opt, sched, generator, *, epochs: int, n: int) -> int:
    """Load a training state into the fresh objects; the epoch to go on from."""
    state = checkpoint.load_state(path)
    if (state["epochs"], state["n"]) != (epochs, n):
        raise DistillError(
            f"{path} is the training state of {state['epochs']} epochs over {state['n']} "
            f"examples, not {epochs} over {n}; delete it to train afresh"
        )
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    sched.milestones = Counter(sched.milestones)  # stored as a dict; MultiStepLR keeps a Counter
    generator.set_state(state["generator"])
    return state["epoch"]


@torch.no_grad()
def test(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500) -> float:
    """Top-1 accuracy of `net` on (x, y), in [0, 1]."""
    net.eval()
    model = accel.compile_module(net)
    correct = 0
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size])
        correct += int((out.argmax(1) == y[start : start + batch_size]).sum())
    return correct / max(len(x), 1)
