"""The evaluation protocol: how a summary is judged, on the survey's three cornerstones.

Performance: K fresh models per architecture trained on the summary with the one training
loop (`datadistill.train`), mean and std of test accuracy. Efficiency: every row carries the
summary's size in images *and* stored bytes. Transferability: the same summary evaluated
on several architectures (`archs`), one row each.
"""

from __future__ import annotations

import dataclasses
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from datadistill import nets
from datadistill.data import Dataset
from datadistill.errors import DistillError, DivergenceWarning
from datadistill.loop import runaway_peak
from datadistill.profile import cpu_name, measure
from datadistill.results import command_line
from datadistill.summary import Summary
from datadistill.train import QUICK, TrainConfig, test, train


@dataclass(frozen=True)
class EvalConfig:
    """`hard_labels`: train on the argmax of learnt (soft) labels with cross-entropy, as
    DD-Ranking's hard-label scores do, so methods that learn labels compare with the rest."""

    archs: tuple[str, ...] = ("convnet",)
    runs: int = 5
    train: TrainConfig = field(default_factory=lambda: QUICK)
    seed: int = 0
    hard_labels: bool = False


def device_name(device) -> str:
    """'cpu', or 'cuda (NVIDIA H200)': timings are only comparable on the same card."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def train_config_for(summary: Summary, base: TrainConfig) -> TrainConfig:
    """The summary's own training hyperparameters override the protocol's (MTT's syn_lr)."""
    changes = {}
    if "syn_lr" in summary.extra:
        changes["lr"] = float(summary.extra["syn_lr"])
    if "label_loss" in summary.extra:
        changes["label_loss"] = summary.extra["label_loss"]
    return base.with_(**changes)


def evaluate(
    summary: Summary,
    data: Dataset,
    *,
    config: EvalConfig,
    device,
    progress: bool = True,
    on_model: Callable[[str, int, torch.nn.Module], None] | None = None,
) -> list[dict]:
    """Train `config.runs` fresh models per architecture on `summary`; one result row each arch.

    `on_model(arch, run, net)` sees every trained network (an audit reuses them).
    """
    if summary.spec.shape != data.spec.shape or summary.spec.num_classes != data.spec.num_classes:
        raise DistillError(
            f"summary is for {summary.spec.name} {summary.spec.shape}, "
            f"but the test data is {data.spec.name} {data.spec.shape}; pass --dataset "
            f"{summary.spec.name}"
        )
    peak = runaway_peak(summary)
    if peak is not None:  # said before hours of training, not after
        warnings.warn(
            f"summary {summary.method} (IPC {summary.ipc}) holds values up to |x| = {peak:.3g} "
            "(normalised data stays within about 5): a ConvNet's instance norm hides the "
            "scale, but networks without normalisation layers will likely stay at chance; "
            "re-distil with a smaller learning rate",
            DivergenceWarning,
            stacklevel=2,
        )
    tcfg = train_config_for(summary, config.train)
    replaced = config.hard_labels and summary.soft_labels
    if replaced:
        summary = dataclasses.replace(summary, labels=summary.hard_labels())
        tcfg = tcfg.with_(label_loss="ce")

    def build(arch: str, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nets.build(arch, data.spec).to(device)

    rows = fresh_models(summary, summary.images, data, dataset=summary.spec.name, config=config,
                        tcfg=tcfg, build=build, dsa_strategy=data.spec.dsa_strategy,
                        device=device, progress=progress, on_model=on_model)  # fmt: skip
    costs = decoder_columns(summary.extra) | one_off_columns(summary.extra)
    labels = {"labels": "hard, argmax of learnt" if replaced else
              "soft" if summary.soft_labels else "hard"}  # fmt: skip
    return [{**row, **costs, **labels} for row in rows]


def one_off_columns(extra: dict) -> dict:
    """What a method needed before it started (experts, a generator): shown beside its
    result, since distillation seconds alone would hide it."""
    one_off = extra.get("one_off")
    if not isinstance(one_off, dict):
        return {}
    return {
        "one_off": one_off.get("kind"),
        "one_off_seconds": one_off.get("seconds"),
        "one_off_bytes": one_off.get("bytes"),
    }


def decoder_columns(extra: dict) -> dict:
    """A shared decoder's bytes, hash and training data (IT-GAN): shown beside the summary's
    own bytes, not charged to them, so a reader can compare at either accounting."""
    if "decoder_bytes" not in extra:
        return {}
    generator = extra.get("generator") or {}
    return {
        "decoder_bytes": extra["decoder_bytes"],
        "decoder_sha256": generator.get("sha256"),
        "decoder_trained_on": generator.get("trained_on"),
    }


def fresh_models(
    summary,
    x: torch.Tensor,
    data: Dataset,
    *,
    dataset: str,
    config: EvalConfig,
    tcfg: TrainConfig,
    build: Callable[[str, int], torch.nn.Module],
    dsa_strategy: str,
    device,
    progress: bool = True,
    on_model: Callable[[str, int, torch.nn.Module], None] | None = None,
) -> list[dict]:
    """The protocol every modality that trains classifiers shares: `config.runs` fresh
    networks per architecture (`build(arch, seed)`) trained on (`x`, the summary's labels) by
    the one training loop, tested on `data`'s test split; one row per architecture (rows name
    `dataset`), with the
    models whose weights became NaN counted and warned about here, once for every modality."""
    x, y = x.to(device), summary.labels.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    rows = []
    for arch in config.archs:
        accs, diverged = [], 0
        bar = tqdm(
            range(config.runs),
            desc=f"eval {summary.method} ipc{summary.ipc} {arch}",
            disable=not progress,
            leave=False,
        )
        with measure(device) as m:
            for r in bar:
                seed = config.seed * 1000 + r
                net = build(arch, seed)
                gen = torch.Generator().manual_seed(seed)
                train(net, x, y, config=tcfg, dsa_strategy=dsa_strategy, generator=gen)
                accs.append(test(net, x_test, y_test))
                diverged += not all(torch.isfinite(p).all() for p in net.parameters())
                if on_model is not None:
                    on_model(arch, r, net)
                bar.set_postfix(acc=f"{100 * accs[-1]:.1f}")
        row = summary_row(summary, dataset, arch, accs, tcfg, m.seconds, device)
        row["eval_dsa"] = tcfg.dsa
        row["diverged_runs"] = diverged  # NaN weights: chance accuracy that is not "learnt nothing"
        if diverged:
            warnings.warn(
                f"{diverged} of {len(accs)} {arch} models trained on {summary.method} (IPC "
                f"{summary.ipc}) diverged to NaN at lr {tcfg.lr} (label loss {tcfg.label_loss}); "
                "their accuracy is chance",
                DivergenceWarning,
                stacklevel=3,
            )
        rows.append(row)
    return rows


def summary_row(summary, dataset: str, arch: str, accs: list[float], tcfg, seconds, device) -> dict:
    """The results schema's row for `accs` of fresh `arch` models trained on `summary` (any
    modality whose summary has method, ipc, n, stored_bytes, seed, objective,
    parameterisation and extra["run"])."""
    run_info = summary.extra.get("run", {})
    return {
        "method": summary.method,
        "dataset": dataset,
        "ipc": summary.ipc,
        "iterations": run_info.get("iterations", 0),
        "arch": arch,
        "runs": len(accs),
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.pstdev(accs),
        "images": summary.n,
        "stored_bytes": summary.stored_bytes,
        "sec_per_iter": run_info.get("sec_per_iter"),
        "peak_mem_mb": run_info.get("peak_mem_mb"),
        "command": command_line(),
        "accs": accs,
        "eval_epochs": tcfg.epochs,  # the protocol (identity of a row); epochs_run: what ran
        "eval_max_steps": tcfg.max_steps,
        "eval_epochs_run": tcfg.epochs_for(summary.n),
        "eval_seconds": seconds,
        "distill_seconds": run_info.get("seconds"),
        "distill_cpu_seconds": run_info.get("cpu_seconds"),
        "seed": summary.seed,
        "objective": summary.objective,
        "parameterisation": summary.parameterisation,
        "device": device_name(device),
        **host_fields(device),
    }


def host_fields(device) -> dict:
    """On a CPU, which one and how many threads trained the models: its seconds mean little
    without them."""
    if torch.device(device).type != "cpu":
        return {}
    return {"cpu": cpu_name(), "threads": torch.get_num_threads()}
