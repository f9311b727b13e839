"""The recommender evaluation protocol: fit a model on a support matrix, rank held-out items.

A support is any float user-item matrix: all real users (the full-data reference), a random
subset of them (the baseline), or a summary's synthetic users. The model is fitted on it
once per ridge in its grid; the ridge with the best validation HR@10 (context: every
user's train items, targets: their validation items) is then scored on the test items with
train + validation items as context, as the infinity-AE code does (`eval.py`; it selects on
HR@100, which is coarse for a few hundred items). Models: the infinity-AE (the learner
Distill-CF distils for) and EASE (transfer to a model it never saw).
"""

from __future__ import annotations

import time

import torch

from datadistill.errors import DistillError
from datadistill.recsys import ease, infinite_ae
from datadistill.recsys.data import RecData
from datadistill.recsys.metrics import ranking_metrics
from datadistill.results import command_line

MODELS = {
    "infinite-ae": (infinite_ae.InfiniteAE, infinite_ae.RIDGES),
    "ease": (ease.EASE, ease.RIDGES),
}
SELECT_ON = "hr@10"


def _scores(model, context: torch.Tensor, *, chunk: int = 4096) -> torch.Tensor:
    return torch.cat([model.predict(context[i : i + chunk]) for i in range(0, len(context), chunk)])


def best_ridge(support: torch.Tensor, data: RecData, *, model: str = "infinite-ae") -> float:
    """The ridge of `model`'s grid with the best validation HR@10 for this support."""
    return evaluate_support(support, data, model=model, test=False)["reg"]


def evaluate_support(
    support: torch.Tensor,
    data: RecData,
    *,
    model: str = "infinite-ae",
    reg: float | None = None,
    test: bool = True,
) -> dict:
    """Metrics of `model` fitted on `support` ([n, items]); `reg` None: chosen on validation.

    Returns {"hr@10", "ndcg@10", "auc", "users", "reg", "model"} on the test items (or on the
    validation items, with `test=False`).
    """
    if model not in MODELS:
        raise DistillError(
            f"unknown recommender model '{model}'; choose one of: {', '.join(MODELS)}"
        )
    if support.dim() != 2 or support.shape[1] != data.spec.num_items:
        raise DistillError(
            f"support has shape {tuple(support.shape)}, expected [n, {data.spec.num_items}] "
            f"for {data.spec.name}; was the summary made for another dataset?"
        )
    cls, grid = MODELS[model]
    val_context = data.train
    best = None
    for r in grid if reg is None else (reg,):
        fitted = cls(reg=r).fit(support)
        m = ranking_metrics(_scores(fitted, val_context), val_context, data.val)
        if best is None or m[SELECT_ON] > best[0][SELECT_ON]:
            best = (m, r, fitted)
    metrics, chosen, fitted = best
    if test:
        context = data.train + data.val.to(data.train.dtype)
        metrics = ranking_metrics(_scores(fitted, context), context, data.test)
    return {**metrics, "reg": chosen, "model": model}


def support_rows(
    method: str,
    support: torch.Tensor,
    data: RecData,
    *,
    users: int,
    iterations: int,
    stored_bytes: int,
    seconds: float,
    seed: int,
    models: tuple[str, ...] = tuple(MODELS),
    device: str = "cpu",
) -> list[dict]:
    """One `datadistill.results` row per model fitted on `support`, mapped so: ipc -> users;
    arch -> the model; acc_mean -> test HR@10 (named in `metric`), acc_std -> 0 (one
    deterministic fit, `runs` 1); images -> users; ndcg@10, auc and the ridge ride along."""
    from datadistill.evaluate import device_name

    rows = []
    for model in models:
        start = time.monotonic()
        m = evaluate_support(support, data, model=model)
        rows.append({
            "method": method, "dataset": data.spec.name, "ipc": users,
            "iterations": iterations, "arch": model, "runs": 1,
            "acc_mean": m["hr@10"], "acc_std": 0.0, "metric": SELECT_ON,
            "ndcg@10": m["ndcg@10"], "auc": m["auc"], "reg": m["reg"],
            "images": users, "stored_bytes": stored_bytes,
            "sec_per_iter": seconds / iterations if iterations else None,
            "peak_mem_mb": None, "distill_seconds": seconds,
            "eval_seconds": time.monotonic() - start, "eval_epochs": 0, "seed": seed,
            "variant": "", "command": command_line(), "device": device_name(device),
        })  # fmt: skip
    return rows
