"""The objective interface (DESIGN.md: "the two interfaces").

An objective owns whatever inner loop it needs (random networks, expert trajectories,
kernels) and returns one scalar loss per outer step. The outer loop (`datadistill.loop`)
owns optimisers, logging, checkpoints, progress, seeds and time limits, so an objective
never prints, saves or seeds anything itself: its randomness comes from the generator
it is handed, which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import torch

from datadistill import nets
from datadistill.data import Dataset
from datadistill.params.base import Parameterisation


class Objective:
    """Base class: `loss(param, data, generator, step)` -> scalar tensor."""

    name = "base"

    def loss(
        self, param: Parameterisation, data: Dataset, generator: torch.Generator, step: int
    ) -> torch.Tensor:
        raise NotImplementedError

    def can_step(self) -> bool:
        """False ends the run before the next step (a privacy budget it would exceed)."""
        return True

    def one_off_steps(self, step: int) -> int:
        """Steps from `step` on (it included) that do one-off work later steps skip, such as
        filling a pool; the run's time estimate times them apart. None by default."""
        return 0

    def summary_extra(self) -> dict:
        """Values evaluation must use, e.g. {"label_loss": "mse"} for KRR-trained labels."""
        return {}

    def state_dict(self) -> dict:
        """Inner state to checkpoint (model pools, trained networks); none by default."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def restored_network(arch: str, data: Dataset, net_config: dict, weights: dict, device):
    """A network of `arch` holding checkpointed `weights`. Built without touching the global
    RNG (the weights overwrite its init), so a resumed run draws what an uninterrupted one
    would."""
    with torch.random.fork_rng(devices=[]):
        net = nets.build(arch, data.spec, **net_config).to(device)
    net.load_state_dict(weights)
    return net
