"""Parameterisations: the learnable tensors a summary *is*, and how they produce examples."""

from datadistill.params.base import Parameterisation
from datadistill.params.images import FreeImages

__all__ = ["Parameterisation", "FreeImages"]
