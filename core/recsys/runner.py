"""`distill run --method distill-cf --dataset powerlaw --ipc 50`: distil, save, evaluate.

`--ipc` (or `--set users=N`) is the number of synthetic users. The outer loop is the one of
`datadistill.distill`; the summary is a `RecSummary`, evaluated with the infinity-AE it was
distilled for and with EASE (transfer), next to a random subset of as many real users.
"""

from __future__ import annotations

import torch

from datadistill import modal_runner
from datadistill.cli import _settings
from datadistill.distill import SUMMARY_FILE, resolve_device, run
from datadistill.recsys import data as recdata
from datadistill.recsys.evaluate import MODELS, evaluate_support
from datadistill.recsys.summary import RecSummary


def summarise(method, cfg, data, ipc, seed, param, objective, state) -> RecSummary:
    """The outer loop's hook: the current prior as a recommender summary."""
    x, _ = param.materialize()
    return RecSummary(
        interactions=x.cpu(),
        spec=data.spec,
        method=method.name,
        objective=objective.name,
        parameterisation=param.name,
        stored_bytes=param.stored_bytes(),
        config=modal_runner.config_dict(cfg),
        seed=seed,
        extra={**objective.summary_extra(), "run": modal_runner.run_info(state)},
        params={k: v.cpu() for k, v in param.tensors().items()},
    )


def random_users(data: recdata.RecData, users: int, *, seed: int) -> torch.Tensor:
    """The baseline: train rows of `users` real users drawn uniformly (seeded)."""
    rows = torch.randperm(data.spec.num_users, generator=torch.Generator().manual_seed(seed))
    return data.train[rows[:users]]


def run_recsys(method, args) -> RecSummary:
    overrides = _settings(args.set)
    users = int(overrides.pop("users", args.ipc))
    data = recdata.load(args.dataset, root=args.data_root)
    out = modal_runner.out_dir(args, method.name, args.dataset, f"u{users}")
    summary = run(
        method.name,
        data,
        users,
        options=modal_runner.options(args),
        overrides=overrides,
        device=resolve_device(args.device),
        out_dir=out,
        summarise=summarise,
    )
    print(f"wrote {out / SUMMARY_FILE}: {summary.n} synthetic users x {data.spec.num_items} items")
    baseline = random_users(data, users, seed=args.seed).cpu()
    for model in MODELS:
        for name, support in (("summary", summary.interactions), ("random users", baseline)):
            m = evaluate_support(support, data.to("cpu"), model=model)
            print(
                f"{model:12s} {name:13s} HR@10 {m['hr@10']:.4f}  nDCG@10 {m['ndcg@10']:.4f}  "
                f"AUC {m['auc']:.4f}  (ridge {m['reg']:g})"
            )
    return summary
