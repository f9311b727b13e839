"""Network zoo for dataset distillation, looked up by name.

``build("convnet", spec, width=64)`` constructs a network for the images described by
``spec``; every network outputs ``[B, num_classes]`` logits and exposes ``embed`` (the
features before the final linear layer) and ``feature_dim``.
"""

from . import alexnet, convnet, lenet, mlp, resnet, vgg  # noqa: F401  (fill the registry)
from ._common import NORMS, Net, make_norm
from ._registry import available, build, register

__all__ = ["NORMS", "Net", "available", "build", "make_norm", "register"]
