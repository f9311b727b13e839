"""A small conditional VAE: the frozen generator behind IT-GAN's latent summaries.

IT-GAN (Zhao & Bilen, 2022) freezes a pretrained conditional GAN (BigGAN) and learns its
latent vectors. No such weights exist here for digits or Fashion-MNIST and nothing may be
downloaded, so the project trains its own generator. We use a conditional VAE (Kingma &
Welling, ICLR 2014; Sohn et al., NeurIPS 2015) rather than a DCGAN because (1) its objective
is a likelihood bound that trains stably on a CPU in minutes with no adversarial tuning, and
(2) its encoder inverts a real image into the latent space in one pass, which IT-GAN's
initialisation needs (it inverts real images by optimisation; `invert` refines the encoder's
guess the same way). The decoder is what IT-GAN's summary is decoded with: latent z ~ N(0, I)
and a class c give an image in the dataset's normalised space.

No batch norm: a decoded example must not depend on which other latents share its batch,
or a summary's images would change with the batch they are materialised in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datadistill.spec import DataSpec


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture and training of the generator (our settings; IT-GAN used BigGAN)."""

    latent_dim: int = 32
    width: int = 32
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


def _down(size: int) -> int:
    """Spatial size after a 4x4, stride-2, padding-1 convolution."""
    return size // 2


class Decoder(nn.Module):
    """(z [n, latent_dim], class ids [n]) -> images [n, C, H, W], normalised like the data.

    A linear map to a (2 width) x s/4 x s/4 map, two stride-2 transposed convolutions, a
    sigmoid into pixel space [0, 1], then the dataset's mean/std normalisation. Sides that 4
    does not divide are decoded at the next multiple of 4 and cropped.
    """

    def __init__(self, spec: DataSpec, *, latent_dim: int, width: int):
        super().__init__()
        self.num_classes, self.size, self.latent_dim = spec.num_classes, spec.size, latent_dim
        self.base = -(-spec.size // 4)
        self.fc = nn.Linear(latent_dim + spec.num_classes, 2 * width * self.base**2)
        self.up = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, spec.channels, 4, stride=2, padding=1),
        )
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1))

    def logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixel logits: sigmoid(logits) is the image in [0, 1]."""
        h = self.fc(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], 1))
        h = self.up(h.view(len(z), -1, self.base, self.base))
        return h[:, :, : self.size, : self.size]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(self.logits(z, y)) - self.mean) / self.std


class Encoder(nn.Module):
    """(images, class ids) -> (mu, log variance) of q(z | x, c)."""

    def __init__(self, spec: DataSpec, *, latent_dim: int, width: int):
        super().__init__()
        self.num_classes = spec.num_classes
        side = _down(_down(spec.size))
        self.conv = nn.Sequential(
            nn.Conv2d(spec.channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width * side * side + spec.num_classes, 2 * latent_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.conv(x), F.one_hot(y, self.num_classes).to(x.dtype)], 1)
        return self.fc(h).chunk(2, dim=1)


class ConditionalVAE(nn.Module):
    """Encoder + decoder; `loss` is the negative ELBO per image (Bernoulli pixels)."""

    def __init__(self, spec: DataSpec, *, latent_dim: int = 32, width: int = 32):
        super().__init__()
        self.spec = spec
        self.latent_dim = latent_dim
        self.encoder = Encoder(spec, latent_dim=latent_dim, width=width)
        self.decoder = Decoder(spec, latent_dim=latent_dim, width=width)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images back to [0, 1] pixels (the Bernoulli targets)."""
        return (x * self.decoder.std + self.decoder.mean).clamp(0, 1)

    def loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self.encoder(x, y)
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        z = mu + eps * (0.5 * logvar).exp()
        recon = F.binary_cross_entropy_with_logits(
            self.decoder.logits(z, y), self.pixels(x), reduction="sum"
        )
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
        return (recon + kl) / len(x)

    def invert(
        self, x: torch.Tensor, y: torch.Tensor, *, steps: int = 0, lr: float = 0.05
    ) -> torch.Tensor:
        """Latents whose decodings reconstruct `x`: the encoder's mean, then `steps` of Adam
        on the squared reconstruction error (optimisation-based GAN inversion, as IT-GAN)."""
        with torch.no_grad():
            z = self.encoder(x, y)[0]
        if steps <= 0:
            return z
        z = z.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                err = ((self.decoder(z, y) - x) ** 2).sum()
                (z.grad,) = torch.autograd.grad(err, [z])  # the decoder's weights stay untouched
                opt.step()
        return z.detach()
