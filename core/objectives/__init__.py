"""Objectives: a scalar loss comparing a parameterisation with the real data."""

from core.objectives.base import Objective
from core.objectives.distribution import MeanEmbedding

__all__ = ["Objective", "MeanEmbedding"]
