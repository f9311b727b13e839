"""Frozen generators that decode a summary's latent vectors into images (IT-GAN)."""

from datadistill.generators.cvae import ConditionalVAE, GeneratorConfig
from datadistill.generators.store import default_path
from datadistill.generators.trainer import ensure_generator, train_generator

__all__ = [
    "ConditionalVAE",
    "GeneratorConfig",
    "default_path",
    "ensure_generator",
    "train_generator",
]
