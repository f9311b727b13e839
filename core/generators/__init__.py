"""Frozen generators that decode a summary's latent vectors into images (IT-GAN)."""

from core.generators.cvae import ConditionalVAE, GeneratorConfig
from core.generators.store import default_path
from core.generators.trainer import ensure_generator, train_generator

__all__ = [
    "ConditionalVAE",
    "GeneratorConfig",
    "default_path",
    "ensure_generator",
    "train_generator",
]
