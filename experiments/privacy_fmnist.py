"""Privacy on Fashion-MNIST: the privacy-utility curve (IPC 10, delta 1e-5) and the audit.

curve   dp-dsa summaries at each epsilon (inf: the same algorithm without noise), evaluated
        by the quick protocol (ConvNet, 300 epochs, DSA) -> privacy_fmnist.json
dpsgd   the DP-SGD baseline (Opacus PrivacyEngine) at the same epsilons -> privacy_fmnist.json
audit   membership inference (loss threshold, offline LiRA) against a model trained on:
        a real subset, the committed non-DP DM and DC summaries (IPC 10), the dp-dsa
        summaries at epsilon 1 and 10 (members: 2,000 random training images); and the
        non-DP models again with their summaries' initial images as members (those that
        started from real images: DM; the committed DC summary started from noise)
        -> privacy_audit.json
report  the table (privacy_fmnist.md) and the plot (privacy_fmnist.png) from those files;
        its noise column says which rows are private releases (a secret noise seed) and which
        are reproducible experiments (rows made before the noise had its own generator)

Every part is resumable (finished cells are read back, distillations resume from their
checkpoints, trained audit models are cached under runs/privacy_audit) and parts can run
as separate processes at once (result files are appended under a lock).

    python experiments/privacy_fmnist.py curve [--epsilons 1 2 5 10 inf] [--runs 3]
    python experiments/privacy_fmnist.py dpsgd [--epsilons 1 2 5 10] [--epochs 5]
    python experiments/privacy_fmnist.py audit [--candidates 2000] [--references 4]
    python experiments/privacy_fmnist.py report
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from datadistill import atomic, nets
from datadistill import data as datasets
from datadistill.bench.cells import Cell, run_cell
from datadistill.distill import resolve_device
from datadistill.evaluate import EvalConfig
from datadistill.results import append_rows, load_rows
from datadistill.summary import Summary
from datadistill.train import QUICK, test
from datadistill_apps.privacy import audit
from datadistill_apps.privacy.dpsgd import DPSGDConfig, train_dpsgd
from datadistill_apps.privacy.table import audits, training

RESULTS = Path("experiments/results/privacy_fmnist.json")
RUNS = Path("experiments/results/privacy_fmnist")  # summaries, grids, checkpoints (committed)
AUDIT = Path("experiments/results/privacy_audit.json")  # rows of the same schema
CACHE = Path("runs/privacy_audit")  # trained audit models (not committed)
NON_DP = {  # committed non-DP summaries at IPC 10 (experiments/engine_fmnist.py, cells.py)
    "dm": Path("experiments/results/engine_fmnist/dm-fashion-mnist-ipc10-s0"),
    "dc": Path("experiments/results/gradient_fmnist/dc-fashion-mnist-ipc10-s0"),
}
DELTA = 1e-5
IPC = 10


def variant(eps: float) -> str:
    return f"epsilon={eps:g}"


def dp_cell(eps: float, iterations: int) -> Cell:
    overrides = (("epsilon", f"{eps:g}"), ("delta", f"{DELTA:g}"))
    return Cell("dp-dsa", IPC, iterations=iterations, overrides=overrides, variant=variant(eps))


def curve(args, data, device) -> None:
    config = EvalConfig(runs=args.runs, train=QUICK)
    for eps in args.epsilons:
        rows = run_cell(
            dp_cell(eps, args.iterations),
            data,
            config=config,
            results=RESULTS,
            runs_dir=RUNS,
            device=device,
            time_limit=args.time_limit,
        )
        print(f"dp-dsa {variant(eps)}: {rows[0]['acc_mean']:.4f}" if rows else "stopped early")


def dpsgd(args, data, device) -> None:
    done = {r["variant"] for r in load_rows(RESULTS) if r["method"] == "dp-sgd"}
    for eps in args.epsilons:
        if variant(eps) in done:
            continue
        cfg = DPSGDConfig(epsilon=eps, delta=DELTA, epochs=args.epochs)
        _, row = train_dpsgd(data, config=cfg, device=device)
        append_rows(RESULTS, [row])
        print(f"dp-sgd {variant(eps)}: {row['acc_mean']:.4f}", flush=True)


def cached(name: str, spec, train_fn) -> torch.nn.Module:
    """A trained ConvNet from the cache, or `train_fn()` saved there (audits take hours)."""
    path = CACHE / f"{name}.pt"
    if path.exists():
        net = nets.build("convnet", spec)
        net.load_state_dict(torch.load(path, weights_only=True))
        return net
    net = train_fn()
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net


def run_audit(args, data, device) -> None:
    done = {r["target"] for r in load_rows(AUDIT)}
    tcfg = QUICK
    # summaries: 2n candidates, references trained on random real sets of IPC 10's size
    cands = audit.draw_candidates(data, args.candidates, torch.Generator().manual_seed(0))
    targets = {f"{m} (non-DP)": NON_DP[m] / "summary.safetensors" for m in ("dm", "dc")}
    for eps in (10.0, 1.0):
        targets[f"dp-dsa {variant(eps)}"] = (
            RUNS / dp_cell(eps, 0).folder(data) / "summary.safetensors"
        )
    refs = None
    for label, path in targets.items() if args.targets in ("all", "summaries") else ():
        if label in done:
            continue
        if not path.exists():
            print(f"skip {label}: {path} not found (run `curve` first)")
            continue
        summary = Summary.load(path)
        if refs is None:
            refs = [
                cached(
                    f"ref-ipc{IPC}-{r}", data.spec, lambda r=r: _ref(data, cands, r, tcfg, device)
                )
                for r in range(args.references)
            ]
        target = cached(
            label.replace(" ", "_"),
            data.spec,
            lambda s=summary: audit.summary_target(s, data, config=tcfg, seed=0, device=device)[0],
        )
        acc = test(target, data.x_test.to(device), data.y_test.to(device))
        result = audit.audit(target, cands, refs)
        _append_audit(
            label, acc, result, cands, refs, tcfg, data, summary=summary, summary_file=str(path)
        )
    # the same non-DP models, audited on the real images their summaries started from
    for m in NON_DP if args.targets in ("all", "init") else ():
        label = f"{m} (non-DP), its initial images"
        path = NON_DP[m] / "summary.safetensors"
        if label in done or not path.exists():
            continue
        summary = Summary.load(path)
        try:
            ic = audit.init_candidates(summary, data, torch.Generator().manual_seed(2))
        except ValueError as e:  # started from noise: no initial images to audit
            print(f"skip {label}: {e}")
            continue
        target = cached(
            f"{m}_(non-DP)",
            data.spec,
            lambda s=summary: audit.summary_target(s, data, config=tcfg, seed=0, device=device)[0],
        )
        init_refs = [
            cached(f"ref-init-{m}-{r}", data.spec, lambda r=r, c=ic: _ref(data, c, r, tcfg, device))
            for r in range(args.references)
        ]
        acc = test(target, data.x_test.to(device), data.y_test.to(device))
        _append_audit(
            label, acc, audit.audit(target, ic, init_refs), ic, init_refs, tcfg, data,
            summary=summary, summary_file=str(path), members="the summary's initial images",
        )  # fmt: skip
    # the real-data model: trained on its members, `real_epochs` of the protocol
    label = f"real data ({args.real} images)"
    if label not in done and args.targets in ("all", "real"):
        real_cfg = tcfg.with_(epochs=args.real_epochs)
        rc = audit.draw_candidates(data, args.real, torch.Generator().manual_seed(1))
        target = cached(
            f"real-{args.real}",
            data.spec,
            lambda: audit.train_model(
                data.x_train[rc.member_rows], data.y_train[rc.member_rows], data.spec,
                config=real_cfg, seed=0, device=device,
            ),
        )  # fmt: skip
        real_refs = [
            cached(
                f"ref-real{args.real}-{r}",
                data.spec,
                lambda r=r: audit.reference_models(
                    data,
                    size=args.real,
                    exclude=rc.member_rows,
                    count=1,
                    config=real_cfg,
                    seed=100 + r,
                    device=device,
                )[0],
            )  # fmt: skip
            for r in range(args.real_references)
        ]
        acc = test(target, data.x_test.to(device), data.y_test.to(device))
        result = audit.audit(target, rc, real_refs)
        real = (data.x_train[rc.member_rows], data.y_train[rc.member_rows])
        _append_audit(label, acc, result, rc, real_refs, real_cfg, data, real=real)


def _ref(data, cands, r, tcfg, device):
    return audit.reference_models(
        data, size=IPC * data.spec.num_classes, exclude=cands.member_rows, count=1,
        config=tcfg, seed=r, device=device,
    )[0]  # fmt: skip


def _append_audit(label, acc, result, cands, refs, tcfg, data, **target) -> None:
    row = audit.audit_row(
        label, acc, result, cands=cands, references=len(refs), config=tcfg,
        dataset=data.spec.name, **target,
    )  # fmt: skip
    append_rows(AUDIT, [row])
    print(f"audit {label}: {result}", flush=True)


def report(args, data, device) -> None:
    rows = [r if r["method"] == "dp-sgd" else r | {"privacy": _privacy(r, data)}
            for r in sorted(load_rows(RESULTS), key=lambda r: (r["method"], _eps(r)))]  # fmt: skip
    text = training(rows) + "\n\n" + audits(load_rows(AUDIT)) + "\n"
    atomic.write_bytes(RESULTS.with_suffix(".md"), text.encode())
    print(text)
    plot(rows, RESULTS.with_suffix(".png"))


def plot(rows: list[dict], path: Path) -> None:
    """Accuracy against epsilon (log axis), infinity drawn at the right edge."""
    from datadistill.plots import plt, save

    finite = [_eps(r) for r in rows if math.isfinite(_eps(r))]
    at_inf = 2 * max(finite, default=10)
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows}):
        rs = [r for r in rows if r["method"] == method]
        xs = [_eps(r) if math.isfinite(_eps(r)) else at_inf for r in rs]
        ax.errorbar(
            xs, [100 * r["acc_mean"] for r in rs], yerr=[100 * r["acc_std"] for r in rs],
            marker="o", capsize=3, label=method,
        )  # fmt: skip
    ticks = sorted(set(finite)) + [at_inf]
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["inf"])
    ax.minorticks_off()
    ax.set_xlabel(f"epsilon (delta {DELTA:g})")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Fashion-MNIST: DP summaries (IPC {IPC}, ConvNet) vs DP-SGD")
    save(fig, path)


def _eps(row: dict) -> float:
    return float(row["variant"].split("=", 1)[1])


def _privacy(row: dict, data) -> dict:
    """The mechanism recorded in the summary of a dp-dsa row."""
    path = RUNS / dp_cell(_eps(row), 0).folder(data) / "summary.safetensors"
    return Summary.load(path).extra.get("privacy", {}) if path.exists() else {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("curve", "dpsgd", "audit", "report"))
    p.add_argument("--epsilons", type=float, nargs="+")
    p.add_argument("--iterations", type=int, default=200, help="dp-dsa matching steps")
    p.add_argument("--runs", type=int, default=3, help="models trained per summary")
    p.add_argument("--epochs", type=int, default=5, help="DP-SGD epochs")
    p.add_argument("--time-limit", type=float, help="seconds per distillation before it pauses")
    p.add_argument("--candidates", type=int, default=2000, help="members (and non-members)")
    p.add_argument("--references", type=int, default=4, help="LiRA reference models")
    p.add_argument("--real", type=int, default=1000, help="real-data model's training images")
    p.add_argument("--real-epochs", type=int, default=30)
    p.add_argument("--real-references", type=int, default=2)
    p.add_argument(
        "--targets",
        choices=("all", "summaries", "init", "real"),
        default="all",
        help="audit only these",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.epsilons is None:
        args.epsilons = [1.0, 2.0, 5.0, 10.0] + ([math.inf] if args.part == "curve" else [])
    data = datasets.load("fashion-mnist")
    {"curve": curve, "dpsgd": dpsgd, "audit": run_audit, "report": report}[args.part](
        args, data, resolve_device(args.device)
    )


if __name__ == "__main__":
    main()
