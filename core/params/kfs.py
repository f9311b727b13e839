"""KFS: per-class latent codes and shared decoders (survey section 2.5, eq. 15).

Lee, Lee & Hwang, "Dataset Condensation with Latent Space Knowledge Factorization and
Sharing", NeurIPS 2022 (arXiv 2208.10494). The summary is a set of latent codes z_j in a
space smaller than the images, each with a class, and D tiny decoders g_phi shared by every
class; example (j, d) = g_phi_d(z_j) keeps the class of its code (eq. 15), so m codes per
class give m * D examples per class at the cost of m small codes plus D small networks.

The paper's code is not public; the decoder here is ours, as small as the budget demands:
the code (C channels at 1/`downsample` resolution, initialised from area-shrunk real
images of its class) is upsampled bilinearly to the image size u, and the decoder adds a
learnt residual, g(z) = u + conv3x3(ReLU(conv3x3(u))), with `width` hidden channels and the
last conv initialised near zero, so every decoder starts close to the upsampled real image
and the decoders drift apart as they learn (their first convs differ). KFS's extra
intra-/inter-class regularisers are not part of eq. 15 and are left out.

Budget: decoders are paid once, the rest buys codes (each with one label).
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill import budget as budgets
from datadistill.data import Dataset
from datadistill.params.factorised import Factorised, low_resolution, shrink, to_image_size


class Decoder(nn.Module):
    """g_phi: upsample, then a near-zero-initialised residual of two 3x3 convs."""

    def __init__(self, channels: int, size: int, width: int):
        super().__init__()
        self.size = size
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, channels, 3, padding=1)
        with torch.no_grad():  # near zero, not zero: conv1 must get a gradient from step 1
            self.conv2.weight.mul_(1e-2)
            self.conv2.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = to_image_size(z, self.size)
        return u + self.conv2(torch.relu(self.conv1(u)))

    @staticmethod
    def floats(channels: int, width: int) -> int:
        """Parameter count, for sizing before building: two 3x3 convs with biases."""
        return 2 * 9 * channels * width + width + channels


class LatentDecoders(Factorised):
    """`codes_per_class` latent codes per class x `n_decoders` shared decoders.

    Example rows are ordered class, then code, then decoder.

    Args:
        codes_per_class: m.
        n_decoders: D.
        width: hidden channels of each decoder.
        downsample: codes are C x ceil(size / downsample)^2.
        init: ``real`` (area-shrunk real images) or ``noise`` codes.
        lr_decoder: the decoders' learning rate; None: the codes'.
    """

    name = "kfs"

    def __init__(
        self,
        data: Dataset,
        *,
        codes_per_class: int,
        n_decoders: int = 4,
        width: int = 8,
        downsample: int = 2,
        init: str = "real",
        lr_decoder: float | None = None,
        generator: torch.Generator,
    ):
        if codes_per_class < 1 or n_decoders < 1 or width < 1:
            raise ValueError(
                f"need >= 1 code, decoder and width, got {codes_per_class}, {n_decoders}, {width}"
            )
        spec = data.spec
        super().__init__(spec, codes_per_class * n_decoders, codes_per_class)
        self.n_decoders = n_decoders
        self.lr_decoder = lr_decoder
        side = low_resolution(spec.size, downsample)
        k = spec.num_classes
        if init == "real":
            z = shrink(self.real_init(data, codes_per_class, generator), side)
        elif init == "noise":
            z = torch.randn(k * codes_per_class, spec.channels, side, side, generator=generator)
        else:
            raise ValueError(f"unknown init '{init}'; use 'real' or 'noise'")
        self.codes = nn.Parameter(z.contiguous())
        with torch.random.fork_rng(devices=[]):  # conv init from `generator` alone
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            self.decoders = nn.ModuleList(
                Decoder(spec.channels, spec.size, width) for _ in range(n_decoders)
            )

    @classmethod
    def for_budget(
        cls,
        data: Dataset,
        budget: int,
        *,
        n_decoders: int = 4,
        width: int = 8,
        downsample: int = 2,
        init: str = "real",
        lr_decoder: float | None = None,
        reserve: int = 0,
        generator: torch.Generator,
    ) -> LatentDecoders:
        """The most codes per class that fit beside the decoders in `budget` bytes
        (`reserve` kept for tensors stored outside, e.g. a learnt step size)."""
        spec = data.spec
        side = low_resolution(spec.size, downsample)
        per_class = budgets.items_within(
            budget - reserve,
            fixed=n_decoders * Decoder.floats(spec.channels, width) * budgets.FLOAT_BYTES,
            per_item=spec.channels * side**2 * budgets.FLOAT_BYTES + budgets.LABEL_BYTES,
            num_classes=spec.num_classes,
            what="latent code",
            fix="--set n_decoders=N or decoder_width=N for smaller decoders",
        )
        return cls(
            data,
            codes_per_class=per_class,
            n_decoders=n_decoders,
            width=width,
            downsample=downsample,
            init=init,
            lr_decoder=lr_decoder,
            generator=generator,
        )

    def sample(self, class_ids=None):
        classes = self.classes(class_ids)
        codes = self.codes[self.item_rows(classes).to(self.codes.device)]
        x = torch.stack([g(codes) for g in self.decoders], dim=1)  # [n, D, C, H, W]
        return x.flatten(0, 1), self.example_labels(classes)

    def param_groups(self) -> list[dict]:
        decoders = {"params": list(self.decoders.parameters())}
        if self.lr_decoder is not None:
            decoders["lr"] = self.lr_decoder
        return [{"params": [self.codes]}, decoders]
