"""Binomial checkpointing ("revolve"): reverse an N-step recurrence keeping a fixed few states.

Griewank, "Achieving logarithmic growth of temporal and spatial complexity in reverse
automatic differentiation", Optimization Methods and Software 1(1), 1992; Griewank &
Walther, "Algorithm 799: revolve", ACM TOMS 26(1), 2000.

Reversing steps N-1, ..., 0 of x_{i+1} = F_i(x_i) needs each state x_i in reverse order.
Keeping all of them costs N states; keeping at most `snapshots` of them (x_0 included) and
recomputing the others forwards from the nearest one costs extra forward steps. With s
snapshots the fewest forward steps before and between the N reversals (each reversal
re-runs its own step, which is not counted) is

    t(N, s) = r N - beta(s + 1, r - 1),     beta(s, r) = C(s + r, s),

where r, the most times any step is run forwards, is the least r with beta(s, r) >= N
(Griewank 1992, Proposition 1). So r = 1 when s >= N - 1 (keep everything), and r grows
only logarithmically in N for a fixed s. The schedule below attains t(N, s) by the
recursion: from the snapshot x_a, run m steps forwards, keep x_{a+m}, reverse the right part
[a+m, a+n) with one snapshot fewer, then the left part [a, a+m) with all of them; m is chosen
to minimise m + t(n-m, s-1) + t(m, s).

The schedule is a plain list of actions, independent of what a state is, so it is tested on
its own (tests/test_trajectory.py); `replay` walks it for `datadistill.objectives.trajectory`
(MTT/TESLA's student) and `datadistill.objectives.unroll` (DD/LinBa's inner training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from math import comb


@dataclass(frozen=True)
class Advance:
    """Run steps start .. stop-1 from the snapshot of x_start; keep x_stop as a snapshot if
    `keep`, otherwise only in hand for the `Reverse(stop)` that follows at once."""

    start: int
    stop: int
    keep: bool


@dataclass(frozen=True)
class Reverse:
    """Reverse step `step` from x_step (in hand or a snapshot); its snapshot is dropped."""

    step: int


Action = Advance | Reverse


def beta(s: int, r: int) -> int:
    """How many steps s snapshots can reverse running no step more than r times forwards."""
    return comb(s + r, s) if r >= 0 else 0


@lru_cache(maxsize=4096)
def forward_steps(steps: int, snapshots: int) -> int:
    """t(N, s): the fewest forward steps to reverse `steps` steps with `snapshots` states."""
    _check(steps, snapshots)
    r = 0
    while beta(snapshots, r) < steps:
        r += 1
    return r * steps - beta(snapshots + 1, r - 1)


@lru_cache(maxsize=64)
def schedule(steps: int, snapshots: int) -> tuple[Action, ...]:
    """The actions reversing steps N-1 .. 0 with at most `snapshots` states kept (x_0 one
    of them; the state in hand is one more), in t(N, s) forward steps.

    The first `Reverse` is always of step N-1: its step yields x_N, hence the loss.
    """
    _check(steps, snapshots)
    out: list[Action] = []
    _reverse(0, steps, snapshots, out)
    return tuple(out)


def replay(steps: int, snapshots: int, kept, advance: Callable, reverse: Callable) -> None:
    """Reverse steps N-1 .. 0 on `schedule(steps, snapshots)`.

    Args:
        kept: the snapshots, holding x_0 at key 0: `kept[i]`, `kept[i] = x`, `kept.pop(i,
            None)` (a dict, or a store of preallocated blocks).
        advance: `advance(x_start, start, stop) -> x_stop`, running steps start .. stop-1.
        reverse: `reverse(i, x_i)`, step i's share of the backward pass.
    """
    hand = None  # (i, x_i): the state an Advance just reached, for the Reverse(i) after it
    for action in schedule(steps, snapshots):
        if isinstance(action, Advance):
            state = advance(kept[action.start], action.start, action.stop)
            if action.keep:
                kept[action.stop] = state
            else:
                hand = (action.stop, state)
            del state  # a kept state lives in `kept` only (its own block there, maybe)
        else:
            i = action.step
            state = hand[1] if hand is not None and hand[0] == i else kept[i]
            hand = None
            reverse(i, state)
            del state  # the schedule never needs x_i again
            kept.pop(i, None)


def _reverse(a: int, n: int, s: int, out: list[Action]) -> None:
    """Reverse steps a .. a+n-1, x_a being a snapshot and s snapshots allowed (x_a's too)."""
    while n > 1:
        m = _split(n, s)
        out.append(Advance(a, a + m, keep=n - m > 1))
        if n - m > 1:
            _reverse(a + m, n - m, s - 1, out)
        else:
            out.append(Reverse(a + m))
        n = m
    out.append(Reverse(a))


def _split(n: int, s: int) -> int:
    """How far to run forwards from the snapshot before reversing the right part."""
    if s == 1:  # no snapshot to spare: run to the last step, reverse it, and again
        return n - 1
    costs = [(m + forward_steps(n - m, s - 1) + forward_steps(m, s), m) for m in range(1, n)]
    return min(costs)[1]


def _check(steps: int, snapshots: int) -> None:
    if steps < 1 or snapshots < 1:
        raise ValueError(f"need steps >= 1 and snapshots >= 1, got {steps} and {snapshots}")
