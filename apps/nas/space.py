"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 operations, 5**6 = 15,625 cells.

A cell is a DAG on nodes 0..3; node j is the sum over i < j of op_(i->j)(node i), node 0 is
the cell's input and node 3 its output (Dong & Yang, ICLR 2020, section 3). Architecture
strings are the benchmark's own, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, parsed with
`nas_201_api`'s `NASBench201API.str2lists` so a string means here what it means in the
benchmark file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from nas_201_api import NASBench201API

from datadistill.errors import DistillError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NODES = 4
# (to, from) for each edge, in the order the string lists them
EDGES = tuple((j, i) for j in range(1, NODES) for i in range(j))
SIZE = len(OPS) ** len(EDGES)
# the cell the paper identifies with a ResNet block; the network's default
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


@dataclass(frozen=True)
class Arch:
    """One cell: the operation on each edge, in `EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise DistillError(f"a cell has {len(EDGES)} edges, got {len(self.ops)} operations")
        bad = [op for op in self.ops if op not in OPS]
        if bad:
            raise DistillError(f"unknown operation(s) {bad}; choose from {', '.join(OPS)}")

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Parse a NAS-Bench-201 architecture string; DistillError if it is not one."""
        try:
            nodes = NASBench201API.str2lists(text.strip())
        except (AssertionError, ValueError) as e:
            raise DistillError(f"'{text}' is not a NAS-Bench-201 architecture string: {e}") from e
        inputs = [[src for _, src in node] for node in nodes]
        if inputs != [list(range(j)) for j in range(1, NODES)]:
            raise DistillError(
                f"'{text}' does not list the edges of a 4-node cell in order; expected the "
                "form |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
            )
        return cls(tuple(op for node in nodes for op, _ in node))

    def __str__(self) -> str:
        parts, k = [], 0
        for j in range(1, NODES):
            parts.append("|" + "|".join(f"{self.ops[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(parts)

    @property
    def ordinal(self) -> int:
        """Position in this module's enumeration (base-5 digits, first edge most significant).

        Not the benchmark file's index: query that with `api.query_index_by_arch(str(arch))`.
        """
        value = 0
        for op in self.ops:
            value = value * len(OPS) + OPS.index(op)
        return value

    @classmethod
    def from_ordinal(cls, ordinal: int) -> Arch:
        if not 0 <= ordinal < SIZE:
            raise DistillError(f"cell ordinal {ordinal} is out of range 0..{SIZE - 1}")
        digits = []
        for _ in EDGES:
            ordinal, d = divmod(ordinal, len(OPS))
            digits.append(OPS[d])
        return cls(tuple(reversed(digits)))

    def matrix(self) -> np.ndarray:
        """NAS-Bench-101-style adjacency matrix of op indices, via `str2matrix`."""
        return NASBench201API.str2matrix(str(self), list(OPS))

    def op(self, to: int, frm: int) -> str:
        return self.ops[EDGES.index((to, frm))]


def all_archs() -> Iterator[Arch]:
    """Every cell of the space, in ordinal order."""
    return (Arch.from_ordinal(i) for i in range(SIZE))


def sample_archs(n: int, *, seed: int) -> list[Arch]:
    """`n` distinct cells drawn uniformly without replacement; the same for the same seed."""
    if not 1 <= n <= SIZE:
        raise DistillError(f"--archs must be between 1 and {SIZE}, got {n}")
    order = torch.randperm(SIZE, generator=torch.Generator().manual_seed(seed))[:n]
    return [Arch.from_ordinal(int(i)) for i in order]
