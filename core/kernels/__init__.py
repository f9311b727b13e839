"""Kernels for meta-model matching (survey section 2.1, eqs. 5-6) and kernel ridge regression.

One interface, `Kernel` (`kernel(x1, x2)` -> [n1, n2] float64 Gram matrix, `diag`, `gram`):
closed-form NNGP and NTK of fully connected ReLU networks (`FCNNGP`, `FCNTK`; KIP), the
random-feature NNGP of random ConvNets (`ConvRandomFeatures`; RFAD) and the feature kernel
of a given network (`NetworkFeatures`; FRePO). `krr` is the regression all of them feed.
"""

from datadistill.kernels.base import FeatureKernel, Kernel
from datadistill.kernels.fc import FCNNGP, FCNTK, relu_fc_diag, relu_fc_kernels
from datadistill.kernels.features import ConvRandomFeatures, NetworkFeatures
from datadistill.kernels.krr import centred_targets, krr, krr_solve

__all__ = [
    "ConvRandomFeatures",
    "FCNNGP",
    "FCNTK",
    "FeatureKernel",
    "Kernel",
    "NetworkFeatures",
    "centred_targets",
    "krr",
    "krr_solve",
    "relu_fc_diag",
    "relu_fc_kernels",
]
