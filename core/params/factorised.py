"""What the factorised parameterisations (LinBa, HaBa, KFS) share: storage and labels.

Survey section 2.5: a factorised summary stores shared components (bases, hallucinators,
decoders) and class-specific items (coefficients, bases, latent codes) and *produces* its
examples from them. Each stored class-specific item carries one int64 label, as a free
image does; everything learnt is a float32 `nn.Parameter`, saved under `param.*` with its
state-dict name, so `load_state_dict(summary.params)` rebuilds the parameterisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from datadistill.budget import LABEL_BYTES
from datadistill.params.base import Parameterisation
from datadistill.spec import DataSpec


class Factorised(Parameterisation):
    """Base class: `items_per_class` class-specific items, each with one stored label."""

    def __init__(self, spec: DataSpec, images_per_class: int, items_per_class: int):
        super().__init__(spec, images_per_class)
        self.items_per_class = items_per_class
        k = spec.num_classes
        self.register_buffer(
            "labels", torch.arange(k).repeat_interleave(images_per_class), persistent=False
        )

    def classes(self, class_ids) -> torch.Tensor:
        """The asked class ids as a 1-D tensor (every class if None)."""
        if class_ids is None:
            return torch.arange(self.num_classes)
        return torch.as_tensor(class_ids).view(-1)

    def item_rows(self, classes: torch.Tensor) -> torch.Tensor:
        """Rows of the class-specific items of `classes`, class-ordered."""
        m = self.items_per_class
        return (classes.view(-1, 1) * m + torch.arange(m)).flatten()

    def example_labels(self, classes: torch.Tensor) -> torch.Tensor:
        return classes.to(self.labels.device).repeat_interleave(self.images_per_class)

    def stored_bytes(self) -> int:
        """Every learnt float32 tensor plus one int64 label per class-specific item."""
        learnt = sum(p.numel() * p.element_size() for p in self.parameters())
        return learnt + self.num_classes * self.items_per_class * LABEL_BYTES

    def tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.named_parameters())


def to_image_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of low-resolution outputs to the dataset's size (no-op if equal)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def low_resolution(size: int, downsample: int) -> int:
    """Side of a component stored `downsample` times smaller than the image (rounded up)."""
    if downsample < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample}")
    return -(-size // downsample)


def shrink(real: torch.Tensor, side: int) -> torch.Tensor:
    """Real images area-averaged to `side` pixels: a low-resolution initialisation."""
    if real.shape[-1] == side:
        return real.clone()
    return F.interpolate(real, size=(side, side), mode="area")
