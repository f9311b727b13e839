"""Exact back-propagation through an unrolled recurrence without keeping its graph.

Back-propagating through T steps of inner training (DD's and LinBa's meta-gradient, survey
eq. 4) the usual way keeps every step's activations for the double backward, so memory
grows as T x batch x activations: LinBa's 150 steps over 260 Fashion-MNIST images of a
ConvNet-3 would need about 85 GB (560 MB a step, experiments/results/bptt_memory.json).
`unroll` runs the T steps without a graph and keeps only the states (parameters and
momentum: a few MB each); on the way back it rebuilds one step's graph at a time from that
step's state. The gradient is the same (a test checks it against the full graph); the
price is one more forward and backward per step (measured: 1.1x the time and 0.26x the
peak memory at 8 steps, flat in the number of steps). With `snapshots` > 0 it keeps at
most that many states and recomputes the others forwards on the binomial schedule of
`datadistill.objectives.revolve` (Griewank & Walther's revolve), for networks whose states
themselves are too many to keep.

A step is `step(t, state, inputs, differentiable) -> next state`, each a tuple of tensors;
`differentiable=False` asks for the plain update (the caller detaches it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from datadistill.objectives import revolve

Tensors = tuple[torch.Tensor, ...]
Step = Callable[[int, Tensors, Tensors, bool], Tensors]


def unroll(step: Step, state: Tensors, inputs: Tensors, steps: int, snapshots: int = 0) -> Tensors:
    """The state after steps 0 .. steps-1 of `step`, differentiable w.r.t. `inputs` only
    (the start state is a constant: a freshly drawn network).

    Args:
        snapshots: how many states the backward pass may keep (the start among them);
            0 keeps every one, which recomputes nothing but the reversed step itself.
    """
    if steps < 1 or snapshots < 0:
        raise ValueError(f"need steps >= 1 and snapshots >= 0, got {steps} and {snapshots}")
    return _Unroll.apply(step, steps, snapshots, len(state), *state, *inputs)


def advance(step: Step, state: Tensors, inputs: Tensors, start: int, stop: int) -> Tensors:
    """The state at `stop` from the state at `start`, keeping no graph."""
    with torch.enable_grad():  # each step differentiates its inner loss
        for t in range(start, stop):
            state = tuple(s.detach() for s in step(t, state, inputs, False))
    return state


class _Unroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, step, steps, snapshots, n_state, *tensors):
        start = tuple(t.detach() for t in tensors[:n_state])
        inputs = tuple(t.detach() for t in tensors[n_state:])
        ctx.step, ctx.steps, ctx.snapshots, ctx.n_state = step, steps, snapshots, n_state
        ctx.kept = {0: start}
        state = start
        for t in range(steps):
            state = advance(step, state, inputs, t, t + 1)
            if snapshots == 0 and t + 1 < steps:
                ctx.kept[t + 1] = state
        ctx.save_for_backward(*inputs)
        return state

    @staticmethod
    def backward(ctx, *grad_end):
        inputs = ctx.saved_tensors
        need = ctx.needs_input_grad[4 + ctx.n_state :]
        start = ctx.kept[0]
        lam = [
            torch.zeros_like(s) if g is None else g for g, s in zip(grad_end, start, strict=True)
        ]
        acc = [torch.zeros_like(x) if n else None for x, n in zip(inputs, need, strict=True)]

        def reverse(i: int, state: Tensors) -> None:
            """Step i's share of the input gradients; moves the adjoint to state i."""
            with torch.enable_grad():
                s = tuple(t.detach().requires_grad_() for t in state)
                xs = tuple(x.detach().requires_grad_(n) for x, n in zip(inputs, need, strict=True))
                out = ctx.step(i, s, xs, True)
                wrt = [*s, *(x for x, n in zip(xs, need, strict=True) if n)]
                grads = torch.autograd.grad(out, wrt, grad_outputs=lam, allow_unused=True)
            for j, g in enumerate(grads[: ctx.n_state]):
                lam[j] = torch.zeros_like(s[j]) if g is None else g
            rest = iter(grads[ctx.n_state :])
            for j, n in enumerate(need):
                if n:
                    g = next(rest)
                    if g is not None:
                        acc[j] += g

        if ctx.snapshots == 0:
            for i in reversed(range(ctx.steps)):
                reverse(i, ctx.kept.pop(i))
        else:

            def forwards(state: Tensors, start: int, stop: int) -> Tensors:
                return advance(ctx.step, state, inputs, start, stop)

            revolve.replay(ctx.steps, ctx.snapshots, ctx.kept, forwards, reverse)
        ctx.kept = {}
        return (None, None, None, None, *([None] * ctx.n_state), *acc)
