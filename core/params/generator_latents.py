"""Latent vectors of a frozen conditional generator: IT-GAN's summary (survey section 2.5).

Zhao & Bilen, "Synthesizing Informative Training Samples with GAN", NeurIPS 2022 workshop
(arXiv 2204.07513). The generator G is trained once on the real data and frozen; the summary
is a set of latent vectors z, `ipc` per class, and its examples are G(z, c). IT-GAN learns
the z so that the decoded images are informative for training (here with DM's loss, as IT-GAN
does) and initialises every z by inverting a real image of its class into G's latent space.

Accounting. `stored_bytes` counts what a summary adds: the latents and one label each. The
decoder is reported apart, as `decoder_bytes` in the summary's metadata and result rows: it
is a dataset-wide codec shared by every summary of that dataset (any ipc, any seed), so
charging it to each summary would price one codec many times, yet without it no image can be
decoded, and the survey asks that storage be counted fairly. Both numbers are shown so a
reader can compare at either accounting; with the decoder included, a latent summary only
pays off once the decoder is shared by many summaries.
"""

from __future__ import annotations

import torch
from torch import nn

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.generators.cvae import ConditionalVAE
from datadistill.params.base import Parameterisation
from datadistill.summary import count_bytes

INITS = ("invert", "prior")


class GeneratorLatents(Parameterisation):
    """`ipc` learnable latents per class, decoded by a frozen conditional generator.

    Args:
        vae: the trained generator; its decoder is kept (frozen), its encoder only serves
            the initialisation.
        init: ``invert`` (IT-GAN): each latent inverts a different real image of its class,
            the encoder's mean refined by `invert_steps` of reconstruction descent;
            ``prior``: draws from the generator's prior N(0, I).
        generator_info: where the generator came from, recorded in the summary's metadata.
    """

    name = "generator_latents"

    def __init__(
        self,
        data: Dataset,
        ipc: int,
        *,
        vae: ConditionalVAE,
        init: str = "invert",
        invert_steps: int = 100,
        generator: torch.Generator,
        generator_info: dict | None = None,
    ):
        if init not in INITS:
            raise DistillError(f"unknown init '{init}'; use --set init={' or init='.join(INITS)}")
        super().__init__(data.spec, ipc)
        k = data.spec.num_classes
        labels = torch.arange(k).repeat_interleave(ipc)
        vae = vae.eval().requires_grad_(False)
        if init == "invert":
            x = data.sample_per_class(ipc, generator).to(next(vae.parameters()).device)
            z = vae.invert(x, labels.to(x.device), steps=invert_steps).cpu()
        else:
            z = torch.randn(k * ipc, vae.latent_dim, generator=generator)
        self.latents = nn.Parameter(z.float().contiguous())
        self.decoder = vae.decoder
        self.register_buffer("labels", labels, persistent=False)
        self.generator_info = dict(generator_info or {})

    def sample(self, class_ids=None):
        if class_ids is None:
            z, y = self.latents, self.labels
        else:
            m = self.images_per_class
            rows = (torch.as_tensor(class_ids).view(-1, 1) * m + torch.arange(m)).flatten()
            rows = rows.to(self.latents.device)
            z, y = self.latents[rows], self.labels[rows]
        return self.decoder(z, y), y

    def param_groups(self) -> list[dict]:
        return [{"params": [self.latents]}]  # the decoder stays frozen

    def stored_bytes(self) -> int:
        """The latents and one label each (see the module docstring for the decoder)."""
        return count_bytes(self.latents, self.labels)

    def decoder_bytes(self) -> int:
        return count_bytes(*self.decoder.state_dict().values())

    def summary_extra(self) -> dict:
        info = self.generator_info
        return {
            "decoder_bytes": self.decoder_bytes(),
            "generator": {**info, "latent_dim": int(self.latents.shape[1])},
            "one_off": {
                "kind": "generator",
                "seconds": info.get("train_seconds"),
                "bytes": info.get("file_bytes"),
            },
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"latents": self.latents}
