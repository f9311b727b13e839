"""Parameterisations: the learnable tensors a summary *is*, and how they produce examples."""

from core.params.base import Parameterisation
from core.params.images import FreeImages

__all__ = ["Parameterisation", "FreeImages"]
