"""Objectives: a scalar loss comparing a parameterisation with the real data."""

from datadistill.objectives.base import Objective
from datadistill.objectives.distribution import MeanEmbedding

__all__ = ["Objective", "MeanEmbedding"]
