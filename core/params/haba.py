"""HaBa: per-class bases and shared hallucinator networks (survey section 2.5, eq. 14).

Liu, Wang, Yang, Ye & Wang, "Dataset Distillation via Factorization", NeurIPS 2022. The
summary is a set of bases b_j, each with a class, and |H| small hallucinator networks
h_theta: X -> X shared by every class; example (j, i) = h_theta_i(b_j) keeps the class of
its basis (eq. 14), so m bases per class give m * |H| examples per class.

A hallucinator, as in HaBa's code (`StyleTranslator`): an encoder conv 3x3 (C -> C, no
padding), a learnt per-pixel affine map (scale initialised to 1, shift to 0), and a decoder
transposed conv 3x3 (C -> C) back to the input size. Bases start from real images of their
class (HaBa's `pix_init real`).

Budget: the hallucinators are paid once, the rest buys bases (each with one label). At
small budgets full-resolution hallucinators can cost as much as the whole budget (on
Fashion-MNIST five cost 27,440 bytes, 87% of IPC 1), leaving no basis; HaBa's own IPC-1
runs exceed the budget instead. Here bases and hallucinators can instead work at
1/`downsample` resolution, the outputs upsampled bilinearly (ours, not in the paper);
`downsample=0` picks the smallest factor (1, 2, 4 ...) at which one basis per class fits.
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill import budget as budgets
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.params.factorised import Factorised, low_resolution, shrink, to_image_size
from datadistill.spec import DataSpec


class Hallucinator(nn.Module):
    """h_theta: conv encoder -> per-pixel affine -> transposed-conv decoder (HaBa's code).

    Initialised near the identity (ours): the encoder and decoder start as a centre tap
    (identity on the channels) plus a random kernel at `init_noise` of PyTorch's default.
    With PyTorch's default init alone, a few-channel 3x3 conv pair erases most of the basis:
    on digits the class means of the hallucinated images spread 0.02 (the real bases: 0.57)
    and a ConvNet trained on them scored 18% at initialisation. Near the identity, each
    hallucinator starts as its basis plus a small random filter, and learning (with the
    contrastive term) moves them apart.
    """

    init_noise = 0.1

    def __init__(self, channels: int, side: int, kernel: int = 3):
        super().__init__()
        if side < kernel:
            raise ValueError(f"a {kernel}x{kernel} hallucinator needs >= {kernel} px, got {side}")
        inner = side - kernel + 1
        self.enc = nn.Conv2d(channels, channels, kernel)
        self.scale = nn.Parameter(torch.ones(1, channels, inner, inner))
        self.shift = nn.Parameter(torch.zeros(1, channels, inner, inner))
        self.dec = nn.ConvTranspose2d(channels, channels, kernel)
        with torch.no_grad():
            c = kernel // 2
            for conv in (self.enc, self.dec):
                conv.weight.mul_(self.init_noise)
                conv.weight[:, :, c, c] += torch.eye(channels)
                conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.scale * self.enc(x) + self.shift)

    @staticmethod
    def floats(channels: int, side: int, kernel: int = 3) -> int:
        """Parameter count, for sizing before building: two convs and the affine map."""
        inner = side - kernel + 1
        return 2 * (channels * channels * kernel * kernel + channels) + 2 * channels * inner**2


class Hallucinated(Factorised):
    """`bases_per_class` bases per class x `n_halluc` shared hallucinators.

    Example rows are ordered class, then basis, then hallucinator, so class c owns rows
    [c * m * |H|, (c + 1) * m * |H|).

    Args:
        bases_per_class: m.
        n_halluc: |H| (HaBa: 5).
        downsample: bases and hallucinators at ceil(size / downsample) px (1: the paper's).
        init: ``real`` (HaBa) or ``noise`` bases.
        lr_halluc: the hallucinators' learning rate (HaBa's `lr_style`); None: the bases'.
    """

    name = "haba"

    def __init__(
        self,
        data: Dataset,
        *,
        bases_per_class: int,
        n_halluc: int = 5,
        downsample: int = 1,
        init: str = "real",
        lr_halluc: float | None = None,
        generator: torch.Generator,
    ):
        if bases_per_class < 1 or n_halluc < 1:
            raise ValueError(f"need >= 1 basis and hallucinator, got {bases_per_class}, {n_halluc}")
        spec = data.spec
        super().__init__(spec, bases_per_class * n_halluc, bases_per_class)
        self.n_halluc = n_halluc
        self.lr_halluc = lr_halluc
        self.side = low_resolution(spec.size, downsample)
        k = spec.num_classes
        if init == "real":
            x = shrink(self.real_init(data, bases_per_class, generator), self.side)
        elif init == "noise":
            shape = (k * bases_per_class, spec.channels, self.side, self.side)
            x = torch.randn(shape, generator=generator)
        else:
            raise ValueError(f"unknown init '{init}'; use 'real' or 'noise'")
        self.bases = nn.Parameter(x.contiguous())
        with torch.random.fork_rng(devices=[]):  # conv init from `generator` alone
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            self.hallucinators = nn.ModuleList(
                Hallucinator(spec.channels, self.side) for _ in range(n_halluc)
            )

    @classmethod
    def for_budget(
        cls,
        data: Dataset,
        budget: int,
        *,
        n_halluc: int = 5,
        downsample: int = 0,
        init: str = "real",
        lr_halluc: float | None = None,
        reserve: int = 0,
        generator: torch.Generator,
    ) -> Hallucinated:
        """The most bases per class that fit beside the hallucinators in `budget` bytes
        (`reserve` kept for tensors stored outside, e.g. a learnt step size); with
        `downsample` 0, the smallest resolution factor at which one basis per class fits."""
        spec = data.spec
        factors = [downsample] if downsample else _factors(spec.size)
        error: DistillError | None = None
        for f in factors:
            try:
                m = budgets.items_within(budget - reserve, **_split(spec, n_halluc, f))
            except DistillError as e:
                error = error or e
                continue
            return cls(
                data,
                bases_per_class=m,
                n_halluc=n_halluc,
                downsample=f,
                init=init,
                lr_halluc=lr_halluc,
                generator=generator,
            )
        raise error

    def param_groups(self) -> list[dict]:
        halluc = {"params": list(self.hallucinators.parameters())}
        if self.lr_halluc is not None:
            halluc["lr"] = self.lr_halluc
        return [{"params": [self.bases]}, halluc]

    def _produce(self, bases: torch.Tensor, which: list[int]) -> torch.Tensor:
        """[n, |which|, C, H, W]: every basis through each chosen hallucinator, upsampled."""
        out = torch.stack([self.hallucinators[i](bases) for i in which], dim=1)
        n, h = out.shape[:2]
        x = to_image_size(out.flatten(0, 1), self.spec.size)
        return x.view(n, h, *x.shape[1:])

    def sample(self, class_ids=None):
        classes = self.classes(class_ids)
        bases = self.bases[self.item_rows(classes).to(self.bases.device)]
        x = self._produce(bases, list(range(self.n_halluc))).flatten(0, 1)
        return x, self.example_labels(classes)

    def views(self, pair: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(h_a(b), h_b(b), class of b) for every basis b: HaBa's contrastive pairs."""
        x = self._produce(self.bases, list(pair))
        labels = torch.arange(self.num_classes, device=self.bases.device)
        return x[:, 0], x[:, 1], labels.repeat_interleave(self.items_per_class)


def _factors(size: int) -> list[int]:
    """Resolution factors 1, 2, 4 ... while the low-resolution side fits a 3x3 conv."""
    out, f = [], 1
    while low_resolution(size, f) >= 3:
        out.append(f)
        f *= 2
    return out


def _split(spec: DataSpec, n_halluc: int, downsample: int) -> dict:
    side = low_resolution(spec.size, downsample)
    return {
        "fixed": n_halluc * Hallucinator.floats(spec.channels, side) * budgets.FLOAT_BYTES,
        "per_item": spec.channels * side**2 * budgets.FLOAT_BYTES + budgets.LABEL_BYTES,
        "num_classes": spec.num_classes,
        "what": "basis",
        "fix": "--set n_halluc=N with fewer hallucinators",
    }
