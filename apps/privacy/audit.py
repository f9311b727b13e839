"""Membership-inference audit: does a model trained on a summary reveal who was in the data?

Candidates are `n` members (training examples the summary was distilled from, or the real
model was trained on) and `n` non-members (test examples nobody trained on). Two attacks
score every candidate, higher meaning "member":

- loss threshold (Yeom et al., "Privacy Risk in Machine Learning", CSF 2018): the target's
  negative cross-entropy on (x, y);
- LiRA, offline, fixed variance (Carlini et al., "Membership Inference Attacks From First
  Principles", S&P 2022, sec. IV-C and VI-B): reference (shadow) models, trained by the
  target's recipe on data holding no candidate, give each example's mean OUT score
  mu(x) of the logit-scaled confidence phi = log(p_y / (1 - p_y)); the attack's statistic
  is (phi_target(x) - mu(x)) / sigma, sigma pooled over all examples (the paper's choice
  for few shadow models). Calibrating per example removes the "this example is just easy"
  signal that the plain loss confuses with membership.

Reported, as Carlini et al. recommend: ROC AUC and the true-positive rate at 1% false
positives. An AUC of 0.5 and a TPR near 0.01 are chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datadistill import nets
from datadistill.data import Dataset
from datadistill.evaluate import EvalConfig, evaluate, summary_row
from datadistill.results import command_line
from datadistill.spec import DataSpec
from datadistill.summary import count_bytes
from datadistill.train import TrainConfig, train

ATTACKS = ("loss", "lira")


@dataclass(frozen=True)
class Candidates:
    """Audit examples: x, y and whether each is a member; `member_rows` index x_train."""

    x: torch.Tensor
    y: torch.Tensor
    member: torch.Tensor  # bool [2n]
    member_rows: torch.Tensor  # the members' rows in data.x_train


def draw_candidates(
    data: Dataset, n: int, generator: torch.Generator, pool: torch.Tensor | None = None
) -> Candidates:
    """`n` members drawn from `pool` (rows of the training set; default all of it) and `n`
    non-members from the test set."""
    pool = torch.arange(len(data.y_train)) if pool is None else pool
    if n > min(len(pool), len(data.y_test)):
        raise ValueError(
            f"{n} candidates a side, but only {len(pool)} members and {len(data.y_test)} "
            "non-members exist; lower --candidates"
        )
    rows = pool[torch.randperm(len(pool), generator=generator)[:n]]
    out = torch.randperm(len(data.y_test), generator=generator)[:n]
    return Candidates(
        x=torch.cat([data.x_train[rows], data.x_test[out]]),
        y=torch.cat([data.y_train[rows], data.y_test[out]]),
        member=torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)]),
        member_rows=rows,
    )


def init_rows(summary, data: Dataset) -> torch.Tensor | None:
    """The training rows a summary's images started from: recorded in its metadata
    (`init_rows`), or, for a real-initialised free-image summary saved before that was
    recorded, drawn again from its seed as `FreeImages` drew them. None for other inits."""
    if "init_rows" in summary.extra:
        return torch.tensor(summary.extra["init_rows"], dtype=torch.long)
    if summary.config.get("init") != "real" or summary.parameterisation != "images":
        return None
    return data.rows_per_class(summary.ipc, torch.Generator().manual_seed(summary.seed))


def init_candidates(summary, data: Dataset, generator: torch.Generator) -> Candidates:
    """Members: the real images the summary started from (unique rows); as many test
    non-members. Raises ValueError for a summary that did not start from real images."""
    rows = init_rows(summary, data)
    if rows is None and summary.config.get("init") == "real":
        raise ValueError(
            f"this {summary.method} summary started from real images but does not name them "
            f"(saved before its {summary.parameterisation} parameterisation recorded "
            "init_rows): distil it again, or audit random members"
        )
    if rows is None:
        raise ValueError(
            f"this {summary.method} summary did not start from real images (init "
            f"{summary.config.get('init', 'unknown')}): audit random members instead"
        )
    return draw_candidates(data, len(rows.unique()), generator, pool=rows.unique())


def train_model(
    x: torch.Tensor,
    y: torch.Tensor,
    spec: DataSpec,
    *,
    arch: str = "convnet",
    config: TrainConfig,
    seed: int,
    device="cpu",
) -> nn.Module:
    """A fresh `arch` trained on (x, y) by the evaluation protocol: `datadistill.evaluate`'s run
    with this seed trains the same network."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nets.build(arch, spec).to(device)
    gen = torch.Generator().manual_seed(seed)
    return train(
        net,
        x.to(device),
        y.to(device),
        config=config,
        dsa_strategy=spec.dsa_strategy,
        generator=gen,
    )


def reference_models(
    data: Dataset,
    *,
    size: int,
    exclude: torch.Tensor,
    count: int,
    config: TrainConfig,
    arch: str = "convnet",
    seed: int = 0,
    device="cpu",
) -> list[nn.Module]:
    """`count` models trained on random class-balanced real sets of `size` images holding no
    row of `exclude`: the OUT world of every candidate."""
    keep = torch.ones(len(data.y_train), dtype=torch.bool)
    keep[exclude] = False
    k = data.spec.num_classes
    per_class = max(1, size // k)
    refs = []
    for r in range(count):
        gen = torch.Generator().manual_seed(10_000 + seed * 100 + r)
        rows = []
        for c in range(k):
            ix = data.class_index(c)
            ix = ix[keep[ix]]
            rows.append(ix[torch.randperm(len(ix), generator=gen)[:per_class]])
        rows = torch.cat(rows)
        refs.append(
            train_model(
                data.x_train[rows],
                data.y_train[rows],
                data.spec,
                arch=arch,
                config=config,
                seed=10_000 + seed * 100 + r,
                device=device,
            )
        )
    return refs


@torch.no_grad()
def logit_confidence(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500):
    """phi = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j, computed stably."""
    net.eval()
    device = next(net.parameters()).device
    out = []
    for xb, yb in zip(x.split(batch), y.split(batch), strict=True):
        z = net(xb.to(device)).float().cpu()
        zy = z.gather(1, yb.view(-1, 1)).squeeze(1)
        others = z.scatter(1, yb.view(-1, 1), float("-inf"))
        out.append(zy - torch.logsumexp(others, dim=1))
    return torch.cat(out)


@torch.no_grad()
def per_example_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500):
    net.eval()
    device = next(net.parameters()).device
    return torch.cat([
        F.cross_entropy(net(xb.to(device)).float().cpu(), yb, reduction="none")
        for xb, yb in zip(x.split(batch), y.split(batch), strict=True)
    ])  # fmt: skip


def roc_metrics(scores: torch.Tensor, member: torch.Tensor, fpr: float = 0.01) -> dict:
    """ROC AUC and the TPR at `fpr` (the best threshold whose FPR does not exceed it)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    s, m = scores.double().numpy(), member.numpy()
    f, t, _ = roc_curve(m, s)
    return {"auc": float(roc_auc_score(m, s)), "tpr_at_1pct_fpr": float(t[f <= fpr].max())}


def attack_scores(
    target: nn.Module, cands: Candidates, references: list[nn.Module]
) -> dict[str, torch.Tensor]:
    """Each attack's membership score for every candidate (higher: more likely a member)."""
    scores = {"loss": -per_example_loss(target, cands.x, cands.y)}
    if references:
        phi_ref = torch.stack([logit_confidence(r, cands.x, cands.y) for r in references])
        mu = phi_ref.mean(0)
        sigma = (phi_ref - mu).std() if len(references) > 1 else phi_ref.std()
        phi = logit_confidence(target, cands.x, cands.y)
        scores["lira"] = (phi - mu) / (sigma + 1e-8)
    return scores


def summary_target(summary, data: Dataset, *, config: TrainConfig, seed: int, device="cpu"):
    """(model, test accuracy) of the evaluation protocol's run 0 on `summary`
    (`datadistill.evaluate` with seed `seed`): the audited model is trained exactly as the
    accuracy table's are."""
    models = []
    rows = evaluate(
        summary,
        data,
        config=EvalConfig(runs=1, train=config, seed=seed),
        device=device,
        progress=False,
        on_model=lambda arch, run, net: models.append(net),
    )
    return models[0], rows[0]["acc_mean"]


def audit(target: nn.Module, cands: Candidates, references: list[nn.Module]) -> dict:
    """{attack: {"auc", "tpr_at_1pct_fpr"}} for the loss attack and, given references, LiRA."""
    return {
        name: roc_metrics(s, cands.member)
        for name, s in attack_scores(target, cands, references).items()
    }


def audit_row(
    target: str,
    test_acc: float,
    result: dict,
    *,
    cands: Candidates,
    references: int,
    config: TrainConfig,
    summary=None,
    real: tuple[torch.Tensor, torch.Tensor] | None = None,
    dataset: str,
    seed: int = 0,
    device="cpu",
    **extra,
) -> dict:
    """The audit of one target as a row of the results schema (`datadistill.results`): the target's
    method, size, bytes and test accuracy, `variant` "audit: <target>", and each attack's AUC
    and TPR at 1% FPR. The target is a model trained on `summary` or on the `real` (x, y)."""
    if (summary is None) == (real is None):
        raise ValueError("audit_row needs a summary or the real (x, y), not both")
    if summary is not None:
        row = summary_row(summary, dataset, "convnet", [test_acc], config, None, device)
        row["seed"] = seed  # the audited model's training seed
    else:
        x, y = real
        classes = int(y.max()) + 1  # a random real set: "ipc" is its mean per class
        row = {
            "method": "real", "dataset": dataset, "ipc": len(y) // classes, "iterations": 0,
            "arch": "convnet", "runs": 1, "acc_mean": test_acc, "acc_std": 0.0,
            "images": len(y), "stored_bytes": count_bytes(x, y), "sec_per_iter": None,
            "peak_mem_mb": None, "eval_epochs": config.epochs, "seed": seed,
        }  # fmt: skip
    return row | {
        "command": command_line(),
        "variant": f"audit: {target}",
        "target": target,
        "candidates": int(cands.member.sum()),
        "references": references,
        **{f"{attack}_{k}": v for attack, r in result.items() for k, v in r.items()},
        "privacy": summary.extra.get("privacy") if summary is not None else None,
        **extra,
    }
