"""Distill-CF vs a random subset of as many real users, at two user budgets (issue 12).

    python experiments/recsys_distill.py --users 25 100 --iterations 200

On the offline `powerlaw` data (`datadistill.recsys.data.PowerLawConfig`: 2,000 users, 500
items), each budget distils a summary through the one outer loop and evaluates it, a
seeded random subset of real users and all users with the same protocol
(`datadistill.recsys.evaluate`: ridge chosen on validation HR@10, metrics on test items), on the
infinity-AE (what Distill-CF distils for) and EASE (transfer). Rows go to
experiments/results/recsys.json in `datadistill.results`' schema, mapped as:
ipc -> synthetic (or sampled) users; arch -> the recommender model; acc_mean -> HR@10
(named in `metric`), acc_std -> 0 (one deterministic fit; `runs` 1); images -> users;
ndcg@10, auc and the chosen ridge `reg` ride along.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datadistill.distill import run
from datadistill.loop import RunOptions
from datadistill.recsys import data as recdata
from datadistill.recsys.evaluate import support_rows
from datadistill.results import append_rows, table

RESULTS = Path("experiments/results")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, nargs="+", default=[25, 100])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full", action="store_true", help="also evaluate all real users")
    args = p.parse_args()
    data = recdata.load("powerlaw")
    out = RESULTS / "recsys.json"
    rows = []
    if args.full:
        n = data.spec.num_users
        rows += support_rows("full-data", data.train, data, users=n, iterations=0,
                             stored_bytes=data.train.numel() * 4, seconds=0.0, seed=0)  # fmt: skip
    for users in args.users:
        s = run("distill-cf", data, users, options=RunOptions(seed=args.seed,
                iterations=args.iterations, progress=False),
                out_dir=RESULTS / "recsys" / f"distill-cf-u{users}-s{args.seed}")  # fmt: skip
        info = s.extra["run"]
        rows += support_rows("distill-cf", s.interactions, data, users=users,
                             iterations=info["iterations"], stored_bytes=s.stored_bytes,
                             seconds=info["seconds"], seed=args.seed)  # fmt: skip
        base = recdata.random_users(data, users, seed=args.seed)
        rows += support_rows("random-users", base, data, users=users, iterations=0,
                             stored_bytes=base.numel() * 4, seconds=0.0,
                             seed=args.seed)  # fmt: skip
        print(table(rows[-4:]), flush=True)
    append_rows(out, rows)
    print(f"appended {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
