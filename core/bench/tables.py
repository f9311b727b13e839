"""The benchmark's tables, computed from result rows (never typed): performance,
transferability and cost, as Markdown and CSV. Figures are in `datadistill.bench_plots`.

Which rows answer a question when a results file holds several protocols:
- performance and cost use the main architecture (ConvNet) and, per method and IPC, the
  protocol with the most runs, then the most epochs, then the most distillation
  iterations; rows of several distillation seeds are pooled (their per-run accuracies).
- transferability uses, at one IPC, the evaluation protocol (epochs) that covers the most
  architectures, so every column was trained the same way.
Rows with a `variant` are ablations of a method and left out, except by `best_rows`, which
answers "how well can this method do under the quick protocol" with the best row of any
budget or variant, named.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping

BASELINES = ("random", "herding", "kcenter")
ARCH_ORDER = ("convnet", "mlp", "lenet", "alexnet", "vgg11", "resnet18")


def method_order(names: Iterable[str]) -> list[str]:
    """Selection baselines first, then the learnt methods alphabetically."""
    names = set(names)
    return [m for m in BASELINES if m in names] + sorted(names - set(BASELINES))


def pooled(rows: list[dict]) -> dict:
    """One row standing for `rows` (seeds of one cell): mean and std over all their runs."""
    accs = [a for r in rows for a in (r.get("accs") or [r["acc_mean"]])]
    first = rows[0]
    return {
        **first,
        "acc_mean": statistics.fmean(accs),
        "acc_std": statistics.pstdev(accs) if len(accs) > 1 else first["acc_std"],
        "runs": len(accs),
        "seeds": sorted({r.get("seed", 0) for r in rows}),
    }


def main_rows(
    rows: Iterable[dict],
    *,
    arch: str = "convnet",
    budget: float | None = None,
    budget_clock: str = "wall",
    variant: str | None = None,
) -> dict[tuple[str, int], dict]:
    """(method, ipc) -> the pooled row of the main protocol on `arch` (see module doc), among
    the rows of an equal-compute sweep of `budget` seconds on `budget_clock`, or (None)
    outside any; rows of `variant` only (None: the method as it is)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("budget_seconds") != budget:
            continue
        if budget is not None and r.get("budget_clock") != budget_clock:
            continue
        if r.get("variant") == variant and r["arch"] == arch and r.get("acc_mean") is not None:
            protocol = (r["runs"], r.get("eval_epochs") or 0, r["iterations"])
            groups[r["method"], r["ipc"], protocol].append(r)
    best: dict[tuple[str, int], tuple] = {}
    for method, ipc, protocol in groups:
        if protocol > best.get((method, ipc), (-1,)):
            best[method, ipc] = protocol
    return {key: pooled(groups[(*key, p)]) for key, p in best.items()}


def best_rows(
    rows: Iterable[dict], *, arch: str = "convnet", epochs: int = 300, runs: int = 5
) -> dict[tuple[str, int], dict]:
    """(method, ipc) -> the best pooled row of any distillation budget or variant among those
    of at least `runs` fresh models trained `epochs` epochs on `arch` (outside equal-compute
    sweeps): each side's best under one evaluation protocol, for like-with-like comparison."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("budget_seconds") is not None or r.get("acc_mean") is None:
            continue
        if on_validation_split(r):
            continue
        if r["arch"] == arch and (r.get("eval_epochs") or epochs) == epochs:
            groups[r["method"], r["ipc"], r.get("variant"), r["iterations"]].append(r)
    best: dict[tuple[str, int], dict] = {}
    for (method, ipc, *_), rs in groups.items():
        row, kept = pooled(rs), best.get((method, ipc))
        if row["runs"] >= runs and (kept is None or row["acc_mean"] > kept["acc_mean"]):
            best[method, ipc] = row
    return best


def on_validation_split(row: dict) -> bool:
    """Whether `row` was judged on held-out training images rather than the test set: a
    search's rows name the split first in their variant (`val1000-...`: experiments/cells.py
    --validation, experiments/privacy_dm.py search)."""
    first = (row.get("variant") or "").split("-", 1)[0]
    return first.startswith("val") and first[3:].isdigit()


def within_noise(a: dict, b: dict) -> bool:
    """Whether two rows' mean +- std intervals overlap."""
    return abs(a["acc_mean"] - b["acc_mean"]) <= a["acc_std"] + b["acc_std"]


def transfer_rows(rows: Iterable[dict], *, ipc: int) -> dict[tuple[str, str], dict]:
    """(method, arch) -> pooled row at `ipc`, all under the protocol covering most archs."""
    by_epochs: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("variant") is None and r["ipc"] == ipc and r.get("acc_mean") is not None:
            by_epochs[r.get("eval_epochs") or 0].append(r)
    if not by_epochs:
        return {}
    epochs = max(by_epochs, key=lambda e: (len({r["arch"] for r in by_epochs[e]}), e))
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in by_epochs[epochs]:
        cells[r["method"], r["arch"]].append(r)
    out = {}
    for key, rs in cells.items():
        most = max(r["iterations"] for r in rs)
        out[key] = pooled([r for r in rs if r["iterations"] == most])
    return out


def most_runs(cells: Mapping[tuple[str, str], dict]) -> int:
    """The runs of the best-covered cell; a cell with fewer (a costly arch) is marked."""
    return max((r["runs"] for r in cells.values()), default=0)


def transfer_archs(cells: Mapping[tuple[str, str], dict]) -> list[str]:
    archs = {a for _, a in cells}
    return [a for a in ARCH_ORDER if a in archs] + sorted(archs - set(ARCH_ORDER))


def _acc(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{100 * row['acc_mean']:.2f} ± {100 * row['acc_std']:.2f}"


def _published(pub: Mapping | None) -> str:
    if not pub:
        return "-"
    std = pub.get("std")
    return f"{pub['acc']:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _markdown(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def _csv(head: list[str], body: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    writer.writerows(body)
    return buffer.getvalue()


def performance(
    rows: list[dict], *, dataset: str, published: Mapping | None = None
) -> tuple[str, str]:
    """(Markdown, CSV): method x IPC, ours (mean ± std %) beside the published figure.

    `published`: dataset -> method -> ipc -> {acc, std, source} (experiments/published.yaml).
    """
    cells = main_rows(r for r in rows if r["dataset"] == dataset)
    pub = (published or {}).get(dataset, {})
    ipcs = sorted({ipc for _, ipc in cells})
    names = method_order(m for m, _ in cells)
    head = ["method"] + [f"IPC {i} {w}" for i in ipcs for w in ("ours", "published")]
    body = [
        [m] + [x for i in ipcs for x in (_acc(cells.get((m, i))), _published(_pub(pub, m, i)))]
        for m in names
    ]
    csv_head = ["dataset", "method", "ipc", "acc_mean", "acc_std", "runs", "seeds",
                "iterations", "eval_epochs", "images", "stored_bytes",
                "published_acc", "published_std", "published_source"]  # fmt: skip
    csv_body = []
    for m in names:
        for i in ipcs:
            r = cells.get((m, i))
            if r is None:
                continue
            p = _pub(pub, m, i) or {}
            csv_body.append([
                dataset, m, i, round(100 * r["acc_mean"], 3), round(100 * r["acc_std"], 3),
                r["runs"], " ".join(map(str, r["seeds"])), r["iterations"],
                r.get("eval_epochs"), r["images"], r["stored_bytes"],
                p.get("acc"), p.get("std"), p.get("source"),
            ])  # fmt: skip
    return _markdown(head, body), _csv(csv_head, csv_body)


def _pub(pub: Mapping, method: str, ipc: int) -> Mapping | None:
    return (pub.get(method) or {}).get(ipc)


def transferability(rows: list[dict], *, dataset: str, ipc: int) -> tuple[str, str]:
    """(Markdown, CSV): method x architecture accuracy of each summary at `ipc`."""
    cells = transfer_rows((r for r in rows if r["dataset"] == dataset), ipc=ipc)
    archs = transfer_archs(cells)
    names = method_order(m for m, _ in cells)
    most = most_runs(cells)

    def cell(r: dict | None) -> str:  # fewer runs than the rest (a costly arch): say so
        if r is None:
            return _acc(r)
        text = (
            _acc(r)
            if r["runs"] >= most
            else (f"{100 * r['acc_mean']:.2f} ({r['runs']} run{'s' if r['runs'] > 1 else ''})")
        )
        bad = r.get("diverged_runs") or 0  # NaN weights: chance that is not "learnt nothing"
        return text + (f", {bad} diverged" if bad else "")

    body = [[m] + [cell(cells.get((m, a))) for a in archs] for m in names]
    csv_body = [
        [dataset, ipc, m, a, round(100 * r["acc_mean"], 3), round(100 * r["acc_std"], 3),
         r["runs"], r.get("eval_epochs")]
        for (m, a), r in sorted(cells.items())
    ]  # fmt: skip
    csv_head = ["dataset", "ipc", "method", "arch", "acc_mean", "acc_std", "runs", "eval_epochs"]
    return _markdown(["method", *archs], body), _csv(csv_head, csv_body)


def cost(rows: list[dict], *, dataset: str) -> tuple[str, str]:
    """(Markdown, CSV): seconds per iteration, total seconds and peak memory per method/IPC.

    Total = distillation (or selection) plus the main evaluation; times compare only
    between rows of the same device, which the table names.
    """
    cells = main_rows(r for r in rows if r["dataset"] == dataset)
    head = ["method", "IPC", "iterations", "s/iter", "distill s", "eval s", "total s",
            "peak MB", "device"]  # fmt: skip
    body = []
    for m in method_order(m for m, _ in cells):
        for ipc in sorted(i for n, i in cells if n == m):
            r = cells[m, ipc]
            distill, ev = r.get("distill_seconds"), r.get("eval_seconds")
            total = None if distill is None and ev is None else (distill or 0) + (ev or 0)
            body.append([m, ipc, r["iterations"], r.get("sec_per_iter"), distill, ev, total,
                         r.get("peak_mem_mb"), r.get("device", "cpu")])  # fmt: skip
    text = [[str(x[0]), str(x[1]), str(x[2]), *map(_num, x[3:8]), str(x[8])] for x in body]
    return _markdown(head, text), _csv(head, body)


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
