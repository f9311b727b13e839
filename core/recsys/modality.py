"""Recommender summaries in the modality registry: `distill eval | show | export` for
Distill-CF's synthetic users.

Evaluation is `datadistill.recsys.evaluate`'s protocol (each model fitted once on the synthetic
users, its ridge chosen on validation HR@10, ranked on the real users' test items), one row
per model as `experiments/recsys_distill.py` writes them. The models take the place of
architectures (`--arch infinite-ae,ease`); a closed-form fit has no runs, epochs,
augmentation or seed, so those options are refused.
"""

from __future__ import annotations

from pathlib import Path

from datadistill.errors import DistillError
from datadistill.modality import (
    EvalRequest,
    Modality,
    ShowRequest,
    describe,
    register,
    tensor_export,
)
from datadistill.modality import shapes as shape_text
from datadistill.recsys.summary import RecSummary
from datadistill.results import fmt_bytes
from datadistill.results import table as results_table


def evaluate_recsys(summary: RecSummary, request: EvalRequest) -> list[dict]:
    from datadistill.recsys import data as recdata
    from datadistill.recsys.evaluate import MODELS, support_rows

    models = request.archs or tuple(MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise DistillError(
            f"unknown recommender model '{unknown[0]}' (--arch names the models a recommender "
            f"summary is fitted to); choose from: {', '.join(MODELS)}"
        )
    data = recdata.load(request.dataset or summary.spec.name, root=request.data_root)
    run = summary.extra.get("run", {})
    return support_rows(
        summary.method,
        summary.interactions.to(request.device),
        data.to(request.device),
        users=summary.n,
        iterations=run.get("iterations", 0),
        stored_bytes=summary.stored_bytes,
        seconds=run.get("seconds", 0.0),
        seed=summary.seed,
        models=models,
        device=request.device,
    )


def recsys_table(rows: list[dict]) -> str:
    """Ranking metrics in place of accuracy, as `distill run --method distill-cf` prints them."""
    return results_table(
        rows,
        [
            ("method", lambda r: r["method"]),
            ("dataset", lambda r: r["dataset"]),
            ("users", lambda r: str(r["images"])),
            ("model", lambda r: r["arch"]),
            ("bytes", lambda r: fmt_bytes(r["stored_bytes"])),
            ("HR@10", lambda r: f"{r['acc_mean']:.4f}"),
            ("nDCG@10", lambda r: f"{r['ndcg@10']:.4f}"),
            ("AUC", lambda r: f"{r['auc']:.4f}"),
            ("ridge", lambda r: f"{r['reg']:g}"),
            ("eval s", lambda r: f"{r['eval_seconds']:.3g}"),
        ],
    )


def show_recsys(summary: RecSummary, path: Path, request: ShowRequest) -> list[str]:
    del path, request  # described on the terminal: no file, no options
    x = summary.interactions
    per_user = x.sum(1)
    return [
        *describe(summary),
        f"tensors:       {shape_text(_tensors(summary))}",
        f"matrix:        {summary.n} synthetic users x {summary.spec.num_items} items (the "
        f"real data: {summary.spec.num_users} users)",
        f"density:       {float((x > 0).float().mean()):.2%} of entries > 0, mean entry "
        f"{float(x.mean()):.4f}; {float(per_user.mean()):.1f} interactions per user "
        f"(min {float(per_user.min()):.1f}, max {float(per_user.max()):.1f})",
    ]


def _tensors(summary: RecSummary) -> dict:
    """The tensors the file stores (`RecSummary.save`)."""
    return {
        "interactions": summary.interactions,
        **{f"param.{k}": v for k, v in summary.params.items()},
    }


register(
    Modality(
        "recsys",
        load=RecSummary.load,
        evaluate=evaluate_recsys,
        show=show_recsys,
        export=tensor_export(_tensors),
        eval_options=frozenset(("archs", "dataset")),
        table=recsys_table,
    )
)
