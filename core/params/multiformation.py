"""IDC's multi-formation: every stored image holds f x f smaller images (survey section 2.5).

Kim et al., "Dataset Condensation via Efficient Synthetic-Data Parameterization", ICML 2022.
Natural images are locally smooth, so a downsampled image keeps most of what a classifier
needs; storing f x f of them in the pixels of one image multiplies the number of training
examples by f^2 at the same storage. Decoding splits a stored H x W image into f x f tiles and
upsamples each tile back to H x W (bilinear, differentiable), so gradients on the decoded
examples reach the stored pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from datadistill.data import Dataset
from datadistill.params.base import Parameterisation


class MultiFormation(Parameterisation):
    """`ipc` stored images per class, each decoded into `factor`^2 examples of its class.

    Args:
        ipc: stored images per class (the storage budget); `images_per_class` is
            ipc * factor^2.
        factor: tiles per side (IDC: 2, and 3 on ImageNet).
        init: ``real`` fills each tile with a different real image of the class, downsampled
            to the tile (IDC's initialisation); ``noise`` draws Gaussian pixels.

    A side that `factor` does not divide is padded to the next multiple with 0, the dataset
    mean in normalised space, before splitting (IDC pads too); the pad is never stored.
    """

    name = "multi_formation"

    def __init__(
        self,
        data: Dataset,
        ipc: int,
        *,
        factor: int = 2,
        init: str = "real",
        generator: torch.Generator,
    ):
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        super().__init__(data.spec, ipc * factor**2)
        self.ipc = ipc
        self.factor = factor
        k = data.spec.num_classes
        if init == "real":
            x = _compose(self.real_init(data, ipc * factor**2, generator), factor)
        elif init == "noise":
            x = torch.randn(k * ipc, *data.spec.shape, generator=generator)
        else:
            raise ValueError(f"unknown init '{init}'; use 'real' or 'noise'")
        self.images = nn.Parameter(x.contiguous())
        self.register_buffer("labels", torch.arange(k).repeat_interleave(ipc), persistent=False)

    def sample(self, class_ids=None):
        if class_ids is None:
            stored, classes = self.images, torch.arange(self.num_classes)
        else:
            classes = torch.as_tensor(class_ids).view(-1)
            rows = (classes.view(-1, 1) * self.ipc + torch.arange(self.ipc)).flatten()
            stored = self.images[rows.to(self.images.device)]
        y = classes.to(self.labels.device).repeat_interleave(self.images_per_class)
        return _decode(stored, self.factor), y

    def stored_bytes(self) -> int:
        """The stored images and one label each; decoded examples cost nothing."""
        n = self.images.numel() * self.images.element_size()
        return n + self.labels.numel() * self.labels.element_size()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}


def _tile(size: int, factor: int) -> int:
    return math.ceil(size / factor)


def _decode(stored: torch.Tensor, factor: int) -> torch.Tensor:
    """[n, C, H, W] stored -> [n * f^2, C, H, W]: the f^2 tiles of image i are rows i*f^2 ..."""
    if factor == 1:
        return stored
    n, c, h, w = stored.shape
    th, tw = _tile(h, factor), _tile(w, factor)
    x = F.pad(stored, (0, tw * factor - w, 0, th * factor - h))
    x = x.view(n, c, factor, th, factor, tw).permute(0, 2, 4, 1, 3, 5)
    x = x.reshape(n * factor * factor, c, th, tw)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def _compose(real: torch.Tensor, factor: int) -> torch.Tensor:
    """[n * f^2, C, H, W] real -> [n, C, H, W]: image i's tiles are real rows i*f^2 ...

    Each real image is shrunk to its tile by area averaging (IDC's code uses nearest
    neighbours; averaging avoids aliasing, and the init is not a published setting).
    """
    if factor == 1:
        return real
    m, c, h, w = real.shape
    n = m // (factor * factor)
    th, tw = _tile(h, factor), _tile(w, factor)
    small = F.interpolate(real, size=(th, tw), mode="area")
    x = small.view(n, factor, factor, c, th, tw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, c, th * factor, tw * factor)[:, :, :h, :w]
