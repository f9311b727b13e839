"""The outer loop's checkpoint: everything a stopped run needs to continue bit for bit.

One `torch.save` file holding the parameterisation, the optimiser state (under the keys the
`Stepper` chooses: "opt" for images, "opts" for graphs, as files written before the loop was
shared have them), the objective's inner state, the seeded generator, torch's global RNG and
the loop's counters. Written to a temporary file then renamed over the old one, so a crash
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from datadistill.errors import DistillError


def save(path: Path, *, param, stepper, objective, generator, state: dict) -> None:
    blob = {
        "param": param.state_dict(),
        **stepper.state_dict(),
        "objective": objective.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": dict(state),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load(path: Path, *, param, stepper, objective, generator) -> dict:
    """Restore every piece in place and return the loop's counters."""
    try:
        # on the CPU: RNG states must stay there; modules and optimisers copy to their device
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise DistillError(
            f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to start afresh"
        ) from e
    try:
        param.load_state_dict(blob["param"])
        stepper.load_state_dict(blob)
        objective.load_state_dict(blob["objective"])
        generator.set_state(blob["generator"])
        torch.set_rng_state(blob["torch_rng"])
        return blob["state"]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DistillError(
            f"checkpoint {path} does not belong to this run ({type(e).__name__}: another method, "
            "size or version wrote it); delete it to start afresh, or write elsewhere (--out)"
        ) from e
