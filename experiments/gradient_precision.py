"""How far is gradient matching's bfloat16 real gradient from float32's, against sampling noise?

The engine computes the real side of DC / DSA / DCC / IDC in a bfloat16 copy of the network
where bfloat16 convolutions are fast (`datadistill.objectives.gradient`). For fresh ConvNets on
Fashion-MNIST this measures, per class (256 real images), the relative L2 distance between
that gradient and float32's on the same batch (rounding), and between float32's on two
independent batches of the class (the noise the method lives with anyway). Writes one row
to experiments/results/gradient_speed.json.

    python experiments/gradient_precision.py [--nets 5]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from datadistill import data as datasets
from datadistill.objectives.distribution import fresh_network
from datadistill.objectives.gradient import GradientMatching
from datadistill.results import append_rows, command_line

RESULTS = Path("experiments/results/gradient_speed.json")


def flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    data = datasets.load("fashion-mnist")
    g = torch.Generator().manual_seed(0)
    fp32, bf16 = GradientMatching(real_precision="fp32"), GradientMatching(real_precision="bf16")
    rounding, noise = [], []
    for _ in range(args.nets):
        net = fresh_network("convnet", data, g, "cpu")
        half = bf16._real_network(net)
        a, b = (data.sample_per_class(args.batch, g) for _ in range(2))
        n = args.batch
        for c in range(data.spec.num_classes):
            xa, xb = a[c * n : (c + 1) * n], b[c * n : (c + 1) * n]
            ref = flat(fp32._real_gradient(net, xa, c, list(net.parameters()), g))
            low = flat(bf16._real_gradient(half, xa, c, list(half.parameters()), g))
            other = flat(fp32._real_gradient(net, xb, c, list(net.parameters()), g))
            rounding.append(rel(low, ref))
            noise.append(rel(other, ref))
    row = {
        "method": "dsa", "dataset": "fashion-mnist", "ipc": 10, "iterations": 0,
        "arch": "convnet", "runs": 0, "acc_mean": None, "acc_std": None, "images": None,
        "stored_bytes": None, "sec_per_iter": None, "peak_mem_mb": None,
        "command": command_line(), "variant": "real gradient, bf16 against fp32",
        "bf16_rel_diff_mean": statistics.mean(rounding), "bf16_rel_diff_max": max(rounding),
        "batch_noise_rel_mean": statistics.mean(noise), "batch_noise_rel_min": min(noise),
        "nets": args.nets, "batch_real": n,
    }  # fmt: skip
    append_rows(RESULTS, [row])
    print(
        f"bf16 vs fp32, same batch: mean {row['bf16_rel_diff_mean']:.4f}, max "
        f"{row['bf16_rel_diff_max']:.4f}; two batches of a class in fp32: mean "
        f"{row['batch_noise_rel_mean']:.4f}, min {row['batch_noise_rel_min']:.4f} "
        f"({args.nets} nets x {data.spec.num_classes} classes)"
    )


if __name__ == "__main__":
    main()
