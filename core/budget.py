"""Storage budgets in bytes: the survey's fair accounting of factorised summaries.

A factorised summary (survey section 2.5) produces more examples than it stores, so "images
per class" no longer measures its cost. The fair unit is the byte: everything a user must
keep to train on the summary as intended (images or bases, hallucinators, decoders, codes,
labels and learnt learning rates). The reference budget is IPC real images of the dataset
with their int64 labels, i.e. exactly what free images at that IPC store, so a factorised
method at "IPC 1" is charged what DM at IPC 1 is.
"""

from __future__ import annotations

import dataclasses
import math

from datadistill.errors import DistillError
from datadistill.spec import DataSpec

FLOAT_BYTES = 4  # float32, as every learnt tensor is stored
LABEL_BYTES = 8  # int64 class id, as the summary file stores hard labels


def image_bytes(spec: DataSpec) -> int:
    """Bytes of one float32 image of the dataset."""
    return math.prod(spec.shape) * FLOAT_BYTES


def ipc_budget(spec: DataSpec, ipc: int) -> int:
    """Bytes of `ipc` real images per class with their labels (free images at that IPC)."""
    return ipc * spec.num_classes * (image_bytes(spec) + LABEL_BYTES)


def ipc_for_budget(spec: DataSpec, budget: int) -> int:
    """Images per class a byte budget buys as free images: floor(budget / bytes per IPC)."""
    per_ipc = ipc_budget(spec, 1)
    ipc = budget // per_ipc
    if ipc < 1:
        raise DistillError(
            f"--bytes {budget} buys no image of every class of {spec.name} (one image per "
            f"class with its label costs {per_ipc} bytes); pass --bytes {per_ipc} or more"
        )
    return ipc


def takes_budget(method) -> bool:
    """Whether a method sizes itself from a byte budget (its config has `budget_bytes`)."""
    return "budget_bytes" in {f.name for f in dataclasses.fields(method.config_cls)}


def resolve(method, spec: DataSpec, *, ipc: int, nbytes: int | None) -> tuple[int, dict]:
    """(ipc, settings) for a run asked as `--ipc` or as `--bytes` (which wins).

    Free images get the IPC the bytes buy. A budget-sized (factorised) method keeps the
    bytes as its `budget_bytes` setting and reports the IPC of real images the budget
    equals (at least 1), so its result rows sit beside free images of the same cost.
    """
    if nbytes is None:
        return ipc, {}
    if nbytes < 1:
        raise DistillError(f"--bytes must be a positive number of bytes, got {nbytes}")
    if takes_budget(method):
        return max(1, nbytes // ipc_budget(spec, 1)), {"budget_bytes": str(nbytes)}
    return ipc_for_budget(spec, nbytes), {}


def items_within(
    budget: int, *, fixed: int, per_item: int, num_classes: int, what: str, fix: str
) -> int:
    """How many class-specific items (bases, codes ...) per class fit beside `fixed` bytes.

    Raises a DistillError naming the smallest budget that fits one item per class, and
    `fix`, the settings that shrink the shared part.
    """
    per_class = (budget - fixed) // (num_classes * per_item)
    if per_class < 1:
        need = fixed + num_classes * per_item
        raise DistillError(
            f"a budget of {budget} bytes leaves no {what} per class: the shared part takes "
            f"{fixed} bytes and one {what} per class {num_classes * per_item} more; pass "
            f"--bytes {need} (or a larger --ipc), or {fix}"
        )
    return per_class
