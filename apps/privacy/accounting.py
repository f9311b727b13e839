"""Privacy accounting with Opacus's accountants, and the checks on a requested budget.

Every matching step releases one Poisson-subsampled Gaussian mechanism (sample rate q,
noise multiplier sigma, see `datadistill_apps.privacy.mechanism`), exactly what Opacus's accountants
compose: RDP (Mironov, CSF 2017; Mironov, Talwar & Zhang 2019), the default, or PRV
(Gopi, Lee & Wutschitz, NeurIPS 2021), tighter and slower. Either `--epsilon/--delta`
calibrate sigma for the planned steps with Opacus's `get_noise_multiplier`, or `--noise`
fixes sigma and the epsilon spent is reported; with both, the run stops before the step
that would exceed the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from datadistill.errors import DistillError

ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class Plan:
    """The mechanism a run will apply, as the accountant sees it (the clip C lives with the
    objective: epsilon does not depend on it)."""

    noise_multiplier: float  # sigma; 0 means no noise (epsilon infinity)
    sample_rate: float  # q, the Poisson inclusion probability of each real example
    delta: float
    epsilon_budget: float  # math.inf: no budget to stop at
    accountant: str

    @property
    def private(self) -> bool:
        return self.noise_multiplier > 0


def check_request(
    *, epsilon: float, delta: float, noise: float, sample_rate: float, n: int, option: str = "--"
):
    """Refuse a budget or mechanism that cannot give a meaningful guarantee on n examples.

    `option` prefixes the flags the messages name (`--client-` for a federated client's).
    """
    if not epsilon > 0:  # also catches NaN
        raise DistillError(
            f"epsilon must be positive, got {epsilon}; pass e.g. {option}epsilon 1 (or inf for "
            "no noise)"
        )
    if not 0 < delta < 1 / n:
        raise DistillError(
            f"delta must be in (0, 1/n) = (0, {1 / n:.3g}) for n = {n} training examples, got "
            f"{delta}: a delta of 1/n allows releasing an example outright; use e.g. "
            f"{option}delta {_below(1 / n):g}"
        )
    if not 0 < sample_rate <= 1:
        raise DistillError(f"sample rate must be in (0, 1], got {sample_rate}")
    if noise < 0:
        raise DistillError(f"the noise multiplier must be >= 0, got {noise}")


def _below(x: float) -> float:
    """A round delta below x (1e-5 for Fashion-MNIST's 60,000 examples)."""
    return 10 ** math.floor(math.log10(x) - 1e-9)


def plan(
    *,
    epsilon: float,
    delta: float,
    noise: float,
    sample_rate: float,
    steps: int,
    n: int,
    accountant: str = "rdp",
    option: str = "--",
) -> Plan:
    """The mechanism for a run of `steps` matching steps on `n` private examples.

    Args:
        epsilon: the budget; math.inf with noise 0 is the non-private limit (no noise).
        noise: sigma if > 0; 0 calibrates sigma so `steps` steps spend at most `epsilon`.

    Raises:
        DistillError: epsilon <= 0, delta outside (0, 1/n), or a budget too small for one
            step.
    """
    if accountant not in ACCOUNTANTS:
        raise DistillError(f"unknown accountant '{accountant}'; use one of {ACCOUNTANTS}")
    check_request(
        epsilon=epsilon, delta=delta, noise=noise, sample_rate=sample_rate, n=n, option=option
    )
    if noise == 0 and math.isinf(epsilon):
        return Plan(0.0, sample_rate, delta, math.inf, accountant)
    if noise == 0:
        noise = calibrate(
            epsilon=epsilon, delta=delta, sample_rate=sample_rate, steps=steps, kind=accountant
        )
    result = Plan(float(noise), sample_rate, delta, epsilon, accountant)
    if epsilon_of(result, [], 1) > epsilon:
        raise DistillError(
            f"the budget epsilon={epsilon:g} is too small for one step with noise multiplier "
            f"{noise:g} at sample rate {sample_rate:g} (delta {delta:g}); raise --epsilon, "
            "raise --noise, or lower the sample rate"
        )
    return result


def calibrate(*, epsilon: float, delta: float, sample_rate: float, steps: int, kind: str) -> float:
    """Opacus's `get_noise_multiplier`: the sigma whose `steps` steps spend <= epsilon."""
    from opacus.accountants.utils import get_noise_multiplier

    if steps < 1:
        raise DistillError(f"cannot calibrate noise for {steps} steps; pass --iterations >= 1")
    try:
        return float(
            get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=kind,
            )
        )
    except ValueError as e:  # Opacus: "The privacy budget is too low." (sigma > 1e6)
        raise DistillError(
            f"the budget epsilon={epsilon:g}, delta={delta:g} is too small for even one step at "
            f"sample rate {sample_rate:g} ({e}); raise --epsilon or lower the sample rate"
        ) from None
    except RuntimeError as e:  # PRV's discretisation fails at epsilon of about 1,000 and up
        raise DistillError(
            f"Opacus's {kind} accountant cannot calibrate epsilon={epsilon:g} ({e}); a budget "
            "that large adds almost no noise: pass --epsilon 100 or less, or inf for no noise"
        ) from None


def accountant_for(kind: str, history: list):
    """An Opacus accountant of `kind` holding `history` [(sigma, q, steps), ...]."""
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=kind)
    acc.history = [tuple(h) for h in history]
    return acc


def epsilon_of(p: Plan, history: list, extra_steps: int = 0) -> float:
    """Epsilon at p.delta after `history` and `extra_steps` more steps of (private) plan `p`."""
    hist = [tuple(h) for h in history]
    if extra_steps:
        hist.append((p.noise_multiplier, p.sample_rate, extra_steps))
    return float(accountant_for(p.accountant, hist).get_epsilon(delta=p.delta)) if hist else 0.0


def steps_within_budget(p: Plan, history: list, wanted: int) -> int:
    """The most steps of plan `p`, at most `wanted`, that keep epsilon within the budget.

    Epsilon grows with the steps, so a binary search finds it (once per run: a PRV
    evaluation takes about a second).
    """
    if math.isinf(p.epsilon_budget) or wanted <= 0:
        return max(wanted, 0)
    if epsilon_of(p, history, wanted) <= p.epsilon_budget:
        return wanted
    lo, hi = 0, wanted  # epsilon(lo) fits, epsilon(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if epsilon_of(p, history, mid) <= p.epsilon_budget:
            lo = mid
        else:
            hi = mid
    return lo
