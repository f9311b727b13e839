"""Free synthetic sentences: learnable [seq_len, dim] embedding matrices, optional soft labels.

Sucholutsky & Schonlau (2021), text dataset distillation: the synthetic data are sentences
of continuous word embeddings, learnt directly (and their labels with them, "soft-label"
distillation). That is `datadistill.params.images.FreeImages` with [seq_len, dim] examples in
place of images: initialised from real embedded sentences or noise, labels as learnable
logits from one-hot, class-ordered rows. Only the name differs, so a summary says what its
tensors are.
"""

from __future__ import annotations

from datadistill.params.images import FreeImages


class FreeSequences(FreeImages):
    name = "sequences"
