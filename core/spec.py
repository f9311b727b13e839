"""What a network or an augmentation needs to know about a dataset, and nothing more.

Kept apart from `datadistill.data` so that networks, augmentations and summaries can be
built from a summary file's metadata alone, without loading any data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DataSpec:
    """Shape and normalisation of one dataset's images.

    Attributes:
        name: registry name (``digits``, ``fashion-mnist`` ...).
        channels: image channels (1 or 3).
        size: image height = width in pixels (8, 28 or 32 here).
        num_classes: number of classes.
        mean: per-channel mean used to normalise pixels in [0, 1].
        std: per-channel standard deviation used likewise.
        dsa_strategy: the DSA paper's augmentation string for this dataset.
    """

    name: str
    channels: int
    size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        d = dict(d)
        d["mean"] = tuple(d["mean"])
        d["std"] = tuple(d["std"])
        return cls(**d)
