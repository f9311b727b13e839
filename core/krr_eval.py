"""Kernel ridge regression accuracy of a summary: the kernel methods' own test.

KIP and RFAD report two numbers for a distilled set: the accuracy of a finite network
trained on it (the protocol in `datadistill.evaluate`) and the accuracy of kernel ridge regression
from it to the test set with the kernel it was distilled for (Nguyen et al., ICLR 2021;
Loo et al., NeurIPS 2022). `krr_accuracy` is the second, to be reported beside the first.

Predictions are argmax_k [K_test,S (K_SS + reg tr(K_SS)/n I)^{-1} (y_S - 1/K)]_k, the
regression the summary was fitted with (`datadistill.kernels.krr`), solved once and applied to
the test set in batches.
"""

from __future__ import annotations

import torch

from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.kernels import FCNTK, ConvRandomFeatures, Kernel
from datadistill.kernels.krr import centred_targets, krr_solve
from datadistill.summary import Summary


def _kip_kernel(cfg: dict, summary: Summary, generator: torch.Generator) -> Kernel:
    return FCNTK(depth=cfg["depth"], w_var=cfg["w_var"], b_var=cfg["b_var"])


def _rfad_kernel(cfg: dict, summary: Summary, generator: torch.Generator) -> Kernel:
    # RFAD validates with 16 fixed random networks of the training width (our count for
    # the test too; RFAD's test uses the exact infinite-width ConvNet kernels instead)
    return ConvRandomFeatures(
        summary.spec.channels,
        summary.spec.size,
        n_models=16,
        width=cfg["width"],
        depth=cfg["depth"],
        w_var=cfg["w_var"],
        b_var=cfg["b_var"],
        generator=generator,
    )


# method -> its kernel, rebuilt from the summary's stored config
KERNELS = {"kip": _kip_kernel, "rfad": _rfad_kernel}


def kernel_for(summary: Summary, *, seed: int = 0) -> Kernel:
    """The kernel `summary`'s method distilled it for (random kernels drawn from `seed`).

    Raises:
        DistillError: the method has no kernel of its own (DD, FRePO, the other
            families); pass one to `krr_accuracy` explicitly.
    """
    if summary.method not in KERNELS:
        raise DistillError(
            f"method '{summary.method}' has no kernel of its own (methods with one: "
            f"{', '.join(sorted(KERNELS))}); pass a kernel, e.g. datadistill.kernels.FCNTK()"
        )
    generator = torch.Generator().manual_seed(seed)
    return KERNELS[summary.method](summary.config, summary, generator)


@torch.no_grad()
def krr_accuracy(
    summary: Summary,
    data: Dataset,
    kernel: Kernel | None = None,
    *,
    reg: float | None = None,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> float:
    """Test accuracy in [0, 1] of kernel ridge regression from `summary` to `data`'s test set.

    Args:
        kernel: the kernel; None: the method's own (`kernel_for`).
        reg: ridge relative to the mean diagonal; None: the summary's `reg` setting, else
            1e-6 (KIP's).
        batch_size: test images per kernel evaluation.
    """
    if summary.spec.shape != data.spec.shape or summary.spec.num_classes != data.spec.num_classes:
        raise DistillError(
            f"summary is for {summary.spec.name} {summary.spec.shape}, but the test data is "
            f"{data.spec.name} {data.spec.shape}; pass --dataset {summary.spec.name}"
        )
    kernel = (kernel_for(summary) if kernel is None else kernel).to(device)
    reg = float(summary.config.get("reg", 1e-6)) if reg is None else reg
    x_s = summary.images.to(device)
    y_s = centred_targets(summary.labels.to(device), data.spec.num_classes)
    alpha = krr_solve(kernel(x_s), y_s, reg=reg)
    correct = 0
    for start in range(0, len(data.y_test), batch_size):
        x_t = data.x_test[start : start + batch_size].to(device)
        y_t = data.y_test[start : start + batch_size].to(device)
        pred = kernel(x_t, x_s) @ alpha
        correct += int((pred.argmax(1) == y_t).sum())
    return correct / max(len(data.y_test), 1)
