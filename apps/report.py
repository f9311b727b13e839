"""`distill report RESULTS.json ...`: the comparison tables the experiment scripts print.

Rows are sorted by the app that wrote them and each kind gets its app's own table (the same
functions the experiments use): federated runs and one-shot summary upload vs FedAvg,
private vs non-private training and membership audits, NAS proxies vs the ground truth,
continual strategies (mean over class orders); any other row gets core's table.
"""

from __future__ import annotations

from pathlib import Path

from datadistill.errors import DistillError


def add_commands(subparsers) -> dict:
    p = subparsers.add_parser("report", help="comparison tables of result rows (JSON)")
    p.add_argument("results", type=Path, nargs="+", help="results files (JSON lists of rows)")
    return {"report": cmd_report}


def sections(rows: list[dict]) -> list[tuple[str, str]]:
    """(title, Markdown table) for each kind of row present, in a fixed order."""
    from datadistill.results import table
    from datadistill_apps.federated import table as federated
    from datadistill_apps.nas.table import markdown as nas_markdown
    from datadistill_apps.privacy import table as privacy

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if federated.is_federated(r):
            kind = "federated"
        elif privacy.is_audit(r):
            kind = "audit"
        elif privacy.is_private(r) or str(r.get("variant", "")).startswith("epsilon="):
            kind = "privacy"
        elif "spearman" in r:
            kind = "nas"
        elif "strategy" in r:
            kind = "continual"
        else:
            kind = "other"
        groups.setdefault(kind, []).append(r)
    out = []
    if fed := groups.get("federated"):
        out.append(("Federated runs", federated.runs(fed)))
        if {r["method"] == "fedavg" for r in fed} == {True, False}:
            out.append(("", federated.comparison(fed)))
    if rs := groups.get("privacy"):
        out.append(("Private vs non-private training", privacy.training(rs)))
    if rs := groups.get("audit"):
        out.append(("Membership-inference audits (AUC 0.5: a guess)", privacy.audits(rs)))
    if rs := groups.get("nas"):
        out.append(("NAS proxies vs the ground truth", nas_markdown(rs)))
    if rs := groups.get("continual"):
        from datadistill_apps.continual.rows import COLUMNS, aggregate

        per_order = [r for r in rs if r.get("runs") == 1 and "seed" in r]
        means = aggregate(per_order) or [r for r in rs if "seeds" in r]
        means.sort(key=lambda r: (r["dataset"], r["ipc"], -r["acc_mean"]))
        out.append(("Continual strategies (mean over class orders)", table(means, COLUMNS)))
    if rs := groups.get("other"):
        out.append(("Other rows", table(rs)))
    return out


def cmd_report(args) -> str:
    from datadistill.results import load_rows

    rows = []
    for path in args.results:
        if not path.is_file():
            raise DistillError(f"no results file {path}; pass a JSON file of result rows")
        try:
            loaded = load_rows(path)
        except ValueError as e:
            raise DistillError(f"{path} is not JSON ({e}); pass a results file") from None
        if not isinstance(loaded, list):
            raise DistillError(f"{path} holds no list of result rows")
        rows += [r for r in loaded if isinstance(r, dict) and "method" in r]
    if not rows:
        raise DistillError(f"no result rows in {', '.join(map(str, args.results))}")
    text = "\n\n".join(f"## {t}\n\n{body}" if t else body for t, body in sections(rows))
    print(text)
    return text
