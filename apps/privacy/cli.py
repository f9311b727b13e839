"""`distill privacy run | audit | dpsgd | epsilon`: the privacy app's commands.

distill privacy run --dataset fashion-mnist --ipc 10 --epsilon 10 --delta 1e-5 --out runs/dp10
distill privacy run ... --noise 1.2               # fixed sigma: reports the epsilon spent
distill privacy run ... --noise 1.2 --epsilon 5   # ... and stops before exceeding 5
distill privacy audit runs/dp10/summary.safetensors --candidates 2000 --references 4
distill privacy audit --real 1000 --dataset fashion-mnist --epochs 30
distill privacy dpsgd --dataset fashion-mnist --epsilon 10 --epochs 5
distill privacy epsilon --noise 1.1 --sample-rate 0.004 --steps 2340 --delta 1e-5
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from datadistill.errors import DistillError
from datadistill_apps.privacy.accounting import ACCOUNTANTS
from datadistill_apps.privacy.mechanism import BACKENDS


def add_commands(sub) -> dict:
    p = sub.add_parser("privacy", help="differentially private distillation and its audit")
    cmds = p.add_subparsers(dest="privacy_command", required=True)
    from datadistill.cli import options

    r = cmds.add_parser("run", help="distil with DP gradient matching (dp-dsa)")
    r.add_argument("--method", default="dp-dsa", help=argparse.SUPPRESS)
    options.run_options(r)
    _budget_options(r, epsilon=None)
    r.add_argument(
        "--noise",
        type=float,
        help="fix the noise multiplier sigma and report epsilon (with --epsilon: stop at it)",
    )
    r.add_argument("--clip", type=float, help="per-example gradient norm bound C (0.1)")
    r.add_argument("--sample-rate", type=float, help="Poisson sampling rate q of real examples")
    r.add_argument("--backend", choices=BACKENDS, help="per-example gradients (opacus)")
    _noise_seed_option(r)

    a = cmds.add_parser("audit", help="membership inference against a model trained on a summary")
    a.add_argument("summary", type=Path, nargs="?", help="the summary (or --real N)")
    a.add_argument(
        "--real", type=int, metavar="N", help="audit a model trained on N real images (members)"
    )
    a.add_argument("--candidates", type=int, default=2000, help="members and as many non-members")
    a.add_argument(
        "--members",
        choices=("random", "init"),
        default="random",
        help="random training examples, or the real images a summary started from (init)",
    )
    a.add_argument("--references", type=int, default=4, help="reference models for LiRA (0: none)")
    a.add_argument("--epochs", type=int, default=300, help="training epochs of every model")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument(
        "--out", type=Path, help="folder for rows.json (default runs/privacy-audit-TARGET-sSEED)"
    )
    a.add_argument("--results", type=Path, help="also append the audit row to this JSON file")
    options.common_options(a, dataset=True)

    d = cmds.add_parser("dpsgd", help="the DP-SGD baseline (Opacus PrivacyEngine)")
    d.add_argument("--dataset", default="digits")
    _budget_options(d, epsilon=10.0)
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--batch-size", type=int, default=1024, help="expected Poisson batch")
    d.add_argument("--lr", type=float, default=2.0)
    d.add_argument("--clip", type=float, default=0.1)
    d.add_argument("--width", type=int, default=32, help="ConvNet width")
    d.add_argument("--seed", type=int, default=0)
    _noise_seed_option(d)
    d.add_argument("--results", type=Path, help="append the result row to this JSON file")
    options.common_options(d)

    e = cmds.add_parser("epsilon", help="epsilon of (sigma, q, steps) by Opacus's accountant")
    e.add_argument("--noise", type=float, required=True)
    e.add_argument("--sample-rate", type=float, required=True)
    e.add_argument("--steps", type=int, required=True)
    e.add_argument("--delta", type=float, default=1e-5)
    e.add_argument("--accountant", choices=ACCOUNTANTS, default="rdp")
    return {"privacy": lambda args: _COMMANDS[args.privacy_command](args)}


def _budget_options(p, *, epsilon: float | None) -> None:
    p.add_argument("--epsilon", type=float, default=epsilon, help="budget (inf: no noise)")
    p.add_argument("--delta", type=float, default=None if epsilon is None else 1e-5)
    p.add_argument("--accountant", choices=ACCOUNTANTS, default=None if epsilon is None else "rdp")


def _noise_seed_option(p) -> None:
    p.add_argument(
        "--noise-seed",
        type=int,
        help="reproducible noise and sampling for experiments: the result is NOT a private "
        "release (default: a secret seed per run)",
    )


def cmd_run(args) -> None:
    from datadistill.cli.run import run_method

    flags = {
        "epsilon": args.epsilon,
        "delta": args.delta,
        "noise": args.noise,
        "clip": args.clip,
        "sample_rate": args.sample_rate,
        "accountant": args.accountant,
        "backend": args.backend,
        "noise_seed": args.noise_seed,
    }
    if args.noise is not None and args.epsilon is None:
        flags["epsilon"] = math.inf  # a fixed sigma and no budget: report the epsilon spent
    args.set = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.set)
    summary = run_method(args)
    p = summary.extra["privacy"]
    eps = "inf (no noise)" if p["epsilon"] is None else f"{p['epsilon']:.4g}"
    print(
        f"privacy: epsilon {eps} at delta {p['delta']:g} ({p['accountant']} accountant), "
        f"sigma {p['noise_multiplier']:.4g}, clip {p['clip']:g}, Poisson rate "
        f"{p['sample_rate']:g}, {p['steps']} steps"
        + (" - stopped by the budget" if p["stopped_by_budget"] else "")
        + f"; noise: {p['noise']}"
    )


def cmd_audit(args) -> None:
    import torch

    from datadistill import data as datasets
    from datadistill.distill import resolve_device
    from datadistill.summary import Summary
    from datadistill.train import TrainConfig, test
    from datadistill_apps.privacy import audit

    if (args.summary is None) == (args.real is None):
        raise DistillError("pass a summary file or --real N (not both)")
    if args.candidates < 1 or args.epochs < 1 or args.references < 0:
        raise DistillError("--candidates and --epochs must be >= 1, --references >= 0")
    if args.members == "init" and args.summary is None:
        raise DistillError("--members init audits a summary's initial images: pass a summary")
    summary = Summary.load(args.summary) if args.summary else None
    name = args.dataset or (summary.spec.name if summary else "digits")
    data = datasets.load(name, root=args.data_root, download=args.download)
    device = resolve_device(args.device)
    tcfg = TrainConfig(epochs=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    try:
        if args.members == "init":  # --candidates does not apply: every initial image
            cands = audit.init_candidates(summary, data, gen)
        else:
            cands = audit.draw_candidates(data, args.real or args.candidates, gen)
    except ValueError as e:
        raise DistillError(str(e)) from None
    if summary is not None:
        target, acc = audit.summary_target(
            summary, data, config=tcfg, seed=args.seed, device=device
        )
        size = summary.n
        label = summary.method + (", its initial images" if args.members == "init" else "")
    else:
        rows = cands.member_rows
        target = audit.train_model(
            data.x_train[rows], data.y_train[rows], data.spec, config=tcfg, seed=args.seed,
            device=device,
        )  # fmt: skip
        acc = test(target, data.x_test.to(device), data.y_test.to(device))
        size, label = args.real, f"real ({args.real} images)"
    refs = audit.reference_models(
        data,
        size=size,
        exclude=cands.member_rows,
        count=args.references,
        config=tcfg,
        seed=args.seed,
        device=device,
    )
    members = cands.member_rows
    row = audit.audit_row(
        label,
        acc,
        audit.audit(target, cands, refs),
        cands=cands,
        references=args.references,
        config=tcfg,
        summary=summary,
        real=None if summary else (data.x_train[members], data.y_train[members]),
        dataset=data.spec.name,
        seed=args.seed,
        device=device,
        summary_file=str(args.summary) if args.summary else None,
        **({"members": "the summary's initial images"} if args.members == "init" else {}),
    )
    from datadistill.results import append_rows
    from datadistill_apps.privacy.table import audits

    target = args.summary.parent.name if args.summary else f"real{args.real}"
    out = (args.out or Path("runs") / f"privacy-audit-{target}-s{args.seed}") / "rows.json"
    append_rows(out, [row])
    if args.results:
        append_rows(args.results, [row])
    print(audits([row]))
    print(f"rows in {out}")


def cmd_dpsgd(args) -> None:
    from datadistill import data as datasets
    from datadistill.distill import resolve_device
    from datadistill.results import append_rows
    from datadistill_apps.privacy.dpsgd import DPSGDConfig, train_dpsgd
    from datadistill_apps.privacy.table import training

    data = datasets.load(args.dataset, root=args.data_root, download=args.download)
    cfg = DPSGDConfig(
        epsilon=args.epsilon,
        delta=args.delta,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        clip=args.clip,
        net_width=args.width,
        accountant=args.accountant,
        seed=args.seed,
        noise_seed=-1 if args.noise_seed is None else args.noise_seed,
    )
    _, row = train_dpsgd(
        data, config=cfg, device=resolve_device(args.device), progress=not args.quiet
    )
    print(training([row]))
    if args.results:
        append_rows(args.results, [row])
        print(f"appended the row to {args.results}")


def cmd_epsilon(args) -> None:
    from datadistill_apps.privacy.accounting import accountant_for

    if args.noise <= 0 or args.steps < 1 or not 0 < args.sample_rate <= 1:
        raise DistillError("need --noise > 0, --steps >= 1 and --sample-rate in (0, 1]")
    acc = accountant_for(args.accountant, [(args.noise, args.sample_rate, args.steps)])
    eps = acc.get_epsilon(delta=args.delta)
    print(f"epsilon {eps:.6g} at delta {args.delta:g} ({args.accountant} accountant)")


_COMMANDS = {"run": cmd_run, "audit": cmd_audit, "dpsgd": cmd_dpsgd, "epsilon": cmd_epsilon}
