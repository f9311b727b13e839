"""Speed of DM's outer step on Fashion-MNIST, IPC 10, batch_real 256, all variants in one run.

Variants of the same objective (same loss to 1e-5, see tests/test_distill.py):
  per-class eager   one class at a time, as the reference implementation does;
  batched eager     every class in one forward pass of 2,560 real images (channels-last,
                    as the engine runs on a CPU);
  batched compiled  chunks of 512 through a torch.compile'd network;
  ... tuned allocator  the same after datadistill.accel.tune_allocator();
  ... bf16 targets     the same with the real side in bfloat16, what the engine runs where
                    datadistill.accel.fast_bf16 holds (a CPU with AMX); the row also gives the
                    bfloat16 error of the class means against their sampling noise.
Each step = fresh random ConvNet, DSA draw, real embedding (no grad), synthetic embedding,
backward to the images. Reports the median seconds per step over --steps steps after a
warm-up (compilation excluded), peak memory above the starting level (the allocator's free
memory handed back after the warm-up, so a tuned allocator's rows count what the step
needs, not only what it needs beyond earlier variants), and ratios against
the per-class step. Also times the evaluation protocol's training loop, eager vs compiled.

    python experiments/engine_speed.py [--steps 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
from pathlib import Path

import torch

from datadistill import accel, nets
from datadistill import data as datasets
from datadistill.objectives import distribution
from datadistill.params.images import FreeImages
from datadistill.profile import cpu_name, measure
from datadistill.results import append_rows, command_line, table
from datadistill.train import TrainConfig, train

RESULTS = Path("experiments/results/engine_speed.json")


def dm_step_seconds(objective, param, data, steps: int):
    times, peaks = [], []
    for i in range(steps + 1):
        gen = torch.Generator().manual_seed(i)
        with measure("cpu") as m:
            loss = objective.loss(param, data, gen, i)
            loss.backward()
        param.images.grad = None
        if i:  # the first step warms up (and compiles)
            times.append(m.seconds)
            peaks.append(m.peak_mem_mb)
        else:  # give back what earlier variants left in the allocator: the peak is this one's
            gc.collect()
            accel.trim_memory()
    return statistics.median(times), max(peaks)


def target_error(data) -> dict:
    """bfloat16's error of DM's real class means, beside their own sampling noise.

    Relative L2 errors averaged over classes and 5 random networks: bfloat16 against float32
    on the same 256 images a class; and the noise of a 256-image mean, estimated from two
    disjoint 256-image batches (their difference has sqrt(2) times that noise).
    """
    errs, noise = [], []
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        net = distribution.fresh_network("convnet", data, gen, "cpu")
        x = data.sample_per_class(512, gen)
        with torch.no_grad():
            e32 = net.embed(x).view(data.spec.num_classes, 512, -1)
            low = copy.deepcopy(net).to(torch.bfloat16)
            e16 = distribution._embed(low, x.to(torch.bfloat16)).float()
            e16 = e16.view(data.spec.num_classes, 512, -1)
        m32, m16 = e32[:, :256].mean(1), e16[:, :256].mean(1)
        scale = m32.norm(dim=1)
        errs.append(((m16 - m32).norm(dim=1) / scale).mean().item())
        other = e32[:, 256:].mean(1)
        noise.append(((other - m32).norm(dim=1) / scale).mean().item() / 2**0.5)
    return {
        "target_rel_err_bf16": statistics.mean(errs),
        "target_rel_sampling_noise": statistics.mean(noise),
    }


def row(variant: str, seconds: float, peak: float, base: float, data) -> dict:
    return {
        "method": "dm", "dataset": data.spec.name, "ipc": 10, "iterations": 0,
        "arch": "convnet", "runs": 0, "acc_mean": None, "acc_std": None, "images": 100,
        "stored_bytes": 100 * 28 * 28 * 4 + 100 * 8, "sec_per_iter": seconds,
        "peak_mem_mb": peak, "command": command_line(), "variant": variant,
        "speedup_vs_per_class": base / seconds, "batch_real": 256,
        "threads": torch.get_num_threads(), "cpu": cpu_name(),
        "amx": bool(torch.cpu._is_amx_tile_supported()),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    data = datasets.load("fashion-mnist")
    param = FreeImages(data, 10, generator=torch.Generator().manual_seed(0))
    strategy = data.spec.dsa_strategy

    def objective(per_class: bool, chunk: int, precision: str = "fp32"):
        obj = distribution.MeanEmbedding(
            dsa_strategy=strategy, per_class=per_class, target_precision=precision
        )
        obj.cpu_chunk = chunk
        return obj

    results = {}
    # glibc's default allocator first (tune_allocator cannot be undone within a process)
    os.environ["DATADISTILL_COMPILE"] = "0"
    distribution._embed = distribution._embed_eager
    results["dm per-class eager"] = dm_step_seconds(objective(True, 512), param, data, args.steps)
    results["dm batched eager"] = dm_step_seconds(objective(False, 2560), param, data, args.steps)
    os.environ["DATADISTILL_COMPILE"] = "1"
    distribution._embed = accel.compile_fn(distribution._embed_eager)
    compiled = objective(False, 512)
    results["dm batched compiled"] = dm_step_seconds(compiled, param, data, args.steps)
    accel.tune_allocator()
    bf16 = accel.fast_bf16(torch.device("cpu"))
    results["dm batched compiled, tuned allocator" + ("" if bf16 else " (engine)")] = (
        dm_step_seconds(compiled, param, data, args.steps)
    )
    if bf16:
        engine = objective(False, 512, "bf16")
        name = "dm batched compiled, tuned allocator, bf16 targets (engine)"
        results[name] = dm_step_seconds(engine, param, data, args.steps)
        error = target_error(data)  # while the embedding is compiled: eager bf16 is slow
    distribution._embed = distribution._embed_eager
    results["dm per-class eager, tuned allocator"] = dm_step_seconds(
        objective(True, 512), param, data, args.steps
    )
    base = results["dm per-class eager"][0]
    rows = [row(name, s, peak, base, data) for name, (s, peak) in results.items()]
    if bf16:
        next(r for r in rows if r["variant"].endswith("bf16 targets (engine)")).update(error)

    # the protocol's training loop: 20 epochs on 100 images, eager vs compiled
    x, y = data.x_train[:100], data.y_train[:100]
    times = {}
    for flag in ("0", "1", "1"):  # the second compiled run is warm (allocator tuned)
        os.environ["DATADISTILL_COMPILE"] = flag
        torch.manual_seed(0)
        net = nets.build("convnet", data.spec)
        gc.collect()
        accel.trim_memory()
        with measure("cpu") as m:
            train(
                net,
                x,
                y,
                config=TrainConfig(epochs=20),
                dsa_strategy=strategy,
                generator=torch.Generator().manual_seed(0),
            )
        times[flag] = (m.seconds / 20, m.peak_mem_mb)
    for flag, name in (("0", "train eager"), ("1", "train compiled")):
        r = row(name, *times[flag], times["0"][0], data)
        r.update(method="protocol", variant=name, note="seconds per epoch, 100 images")
        rows.append(r)
    append_rows(RESULTS, rows)
    print(table(rows, [
        ("variant", lambda r: r["variant"]),
        ("s/step", lambda r: f"{r['sec_per_iter']:.3f}"),
        ("peak MB", lambda r: f"{r['peak_mem_mb']:.0f}"),
        ("speed-up", lambda r: f"{r['speedup_vs_per_class']:.2f}x"),
    ]))  # fmt: skip
    for r in rows:
        if "target_rel_err_bf16" in r:
            print(
                f"bf16 targets: class means off by {r['target_rel_err_bf16']:.2%} (relative), "
                f"their sampling noise {r['target_rel_sampling_noise']:.2%}"
            )


if __name__ == "__main__":
    main()
