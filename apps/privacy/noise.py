"""Where a private release's randomness comes from: a secret seed per run, or a recorded one.

The Gaussian mechanism protects only if the adversary cannot replay its noise, and the
Poisson-subsampling amplification its accountant counts (Abadi et al., CCS 2016; Mironov et
al., 2019) holds only if the adversary cannot replay which examples each step sampled. Both
therefore come from a generator of their own, never from the run's seed, which the summary's
metadata records and which still drives everything that is post-processing (the synthetic
images' initialisation, the matching networks, the augmentation draws).

By default that generator is seeded per run from the operating system's secure source
(`secrets`, i.e. os.urandom) and the seed is neither recorded nor checkpointed, the role
Opacus's ``secure_mode`` plays (Opacus needs torchcsprng for it, which does not build for
the torch this project pins). The generator itself is torch's Mersenne Twister: its 64-bit
seed is secret, but it is not a cryptographic generator, and floating-point attacks on the
Gaussian sampler (Mironov, CCS 2012) are not defended against. ``noise_seed >= 0`` makes the
noise and the sampling reproducible for experiments and marks the release as not private.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import torch

from datadistill.errors import DistillError

SECURE = "secure: drawn from a secret per-run seed (os.urandom), never recorded"
REPRODUCIBLE = "reproducible, not a private release"
NONE = "none (no noise: not a private release)"


def generator(noise_seed: int) -> torch.Generator:
    """The mechanism's generator: seeded by `noise_seed` if >= 0, else by a fresh secret seed."""
    if noise_seed < -1:
        raise DistillError(
            f"noise_seed must be -1 (secure noise) or a seed >= 0, got {noise_seed}; "
            "leave it out for a private release"
        )
    seed = noise_seed if noise_seed >= 0 else secrets.randbits(64)
    return torch.Generator().manual_seed(seed)


def mode(noise_seed: int, *, private: bool) -> str:
    """The marker a release's metadata and result rows carry under the key "noise"."""
    if not private:
        return NONE
    return REPRODUCIBLE if noise_seed >= 0 else SECURE


def marker(privacy: Mapping | None) -> str | None:
    """What `distill show` and the privacy table say about a release's noise, from its
    metadata's ``privacy`` block (or a result row); None when it is not a DP release.

    Releases written before the noise had its own generator drew it from the run's recorded
    seed: they are reproducible, hence not private, and say so."""
    if not privacy:
        return None
    if privacy.get("noise"):
        return privacy["noise"]
    return NONE if privacy.get("private") is False else REPRODUCIBLE


def is_private_release(privacy: Mapping | None) -> bool:
    """True only for a DP release whose noise was secret."""
    return marker(privacy) == SECURE
