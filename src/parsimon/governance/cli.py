"""``parsimon ledger`` and ``parsimon audit``: inspect costs and budgets, verify the proof-of-action log.

Only light modules are imported here; the governance modules load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from parsimon.cliutil import choices
from parsimon.governance.ledger import _GROUP_BY, METRICS

__all__ = ["COMMANDS", "audit_app", "ledger_app"]

ledger_app = typer.Typer(
    help="Cost ledger: what each run, workflow and component spent (tokens, money, actions, wall and GPU "
    "seconds), and the soft/hard budgets that stop a run before it overspends.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Proof-of-action log: a hash-chained, append-only record of every action an agent took. "
    "`verify` reports the first edited, deleted, inserted, reordered or truncated record.",
    no_args_is_help=True,
)
COMMANDS = {"ledger": ledger_app, "audit": audit_app}

GroupBy = choices(_GROUP_BY)
MetricName = choices(METRICS)
_PATH_HELP = "The governance SQLite file (default $PARSIMON_HOME/governance.sqlite)."


def _existing(path: Path | None, hint: str) -> Path | None:
    if path is not None and not Path(path).is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint=hint)
    return path


def _console():
    from rich.console import Console

    return Console()


@ledger_app.command("show")
def ledger_show(
    by: GroupBy = typer.Option("component", "--by", help="What to sum over."),
    run: str = typer.Option(None, "--run", help="Only events of this run."),
    workflow: str = typer.Option(None, "--workflow", help="Only events of this workflow."),
    top: int = typer.Option(None, "--top", min=1, help="Only the N biggest spenders of --metric."),
    metric: MetricName = typer.Option("money", "--metric", help="The metric --top ranks by."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Show what was spent, summed per component, workflow or run, and the budgets set."""
    from rich.table import Table

    from parsimon.governance.ledger import get_ledger

    ledger = get_ledger(_existing(path, "--path"))
    rows = ledger.totals(by, run=run, workflow=workflow)
    if top is not None:
        rows = sorted(rows, key=lambda r: (-r[metric], str(r[by])))[:top]
    budgets = ledger.budgets()
    for b in budgets:
        spent = ledger.spent(**{b["kind"]: b["scope"]}, metric=b["metric"])
        b["spent"] = spent
        b["remaining"] = None if b["hard"] is None else b["hard"] - spent
    if as_json:
        typer.echo(json.dumps({"by": by, "rows": rows, "budgets": budgets}, indent=2))
        return
    table = Table(title=f"Spending by {by}" + (f" (top {top} by {metric})" if top else ""))
    for col in (by, "events", "tokens in", "tokens out", "money", "actions", "wall s", "GPU s"):
        table.add_column(col, justify="left" if col == by else "right")
    for r in rows:
        table.add_row(str(r[by] if r[by] is not None else "(none)"), str(r["events"]), str(r["tokens_in"]),
                      str(r["tokens_out"]), f"{r['money']:.4f}", str(r["actions"]), f"{r['wall_s']:.2f}",
                      f"{r['gpu_s']:.2f}")
    console = _console()
    console.print(table)
    if budgets:
        bt = Table(title="Budgets")
        for col in ("scope", "metric", "soft", "hard", "spent", "remaining"):
            bt.add_column(col, justify="left" if col in ("scope", "metric") else "right")
        for b in budgets:
            bt.add_row(f"{b['kind']} {b['scope']}", b["metric"], *(
                "-" if b[k] is None else f"{b[k]:g}" for k in ("soft", "hard", "spent", "remaining")))
        console.print(bt)


@ledger_app.command("budget")
def ledger_budget(
    run: str = typer.Option(None, "--run", help="The run the budget applies to."),
    workflow: str = typer.Option(None, "--workflow", help="The workflow the budget applies to."),
    metric: MetricName = typer.Option(..., "--metric", help="The metric the budget limits."),
    soft: float = typer.Option(None, "--soft", help="Soft limit: crossing it warns once."),
    hard: float = typer.Option(None, "--hard", help="Hard limit: a charge that would cross it is refused."),
    clear: bool = typer.Option(False, "--clear", help="Remove this budget."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Set (or with --clear remove) the soft and hard limits of one metric for a run or a workflow."""
    from parsimon.governance.ledger import get_ledger

    if soft is None and hard is None and not clear:
        raise typer.BadParameter("give --soft and/or --hard, or --clear", param_hint="--soft/--hard")
    ledger = get_ledger(path)
    try:
        ledger.set_budget(run=run, workflow=workflow, metric=metric, soft=None if clear else soft,
                          hard=None if clear else hard)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    scope = f"run {run}" if run is not None else f"workflow {workflow}"
    if clear:
        typer.echo(f"cleared the {metric} budget of {scope}")
        return
    spent = ledger.spent(run=run, workflow=workflow, metric=metric)
    typer.echo(f"{scope}: {metric} soft={soft if soft is not None else '-'} "
               f"hard={hard if hard is not None else '-'} (spent so far {spent:g})")


def _open_log(path: Path | None, jsonl: Path | None):
    from parsimon.governance.audit import AuditLog, JsonlAuditLog

    if path is not None and jsonl is not None:
        raise typer.BadParameter("give --path or --jsonl, not both", param_hint="--path/--jsonl")
    if jsonl is not None:
        return JsonlAuditLog(_existing(jsonl, "--jsonl"))
    if path is not None and str(path).endswith(".jsonl"):
        return JsonlAuditLog(_existing(path, "--path"))
    return AuditLog(_existing(path, "--path"))


def _parse_head(text: str | None):
    if text is None:
        return None
    from parsimon.governance.chain import normalise_head

    n, sep, digest = text.strip().partition(":")
    try:
        if not sep or not n.isdigit():
            raise ValueError(text)
        return normalise_head((int(n), digest))
    except ValueError:
        raise typer.BadParameter(f"expected N:SHA256HEX (as printed by `parsimon audit head`), got {text!r}",
                                 param_hint="--expect-head") from None


@audit_app.command("verify")
def audit_verify(
    path: Path = typer.Option(None, "--path", help=_PATH_HELP + " A path ending in .jsonl is read as JSONL."),
    jsonl: Path = typer.Option(None, "--jsonl", help="Verify an exported or mirrored JSONL log instead."),
    expect_head: str = typer.Option(None, "--expect-head", help="An anchor N:HASH kept elsewhere (from "
                                    "`parsimon audit head`): the log must still contain that prefix."),
) -> None:
    """Recompute the hash chain. Exit code 0 when intact, 1 with the first bad record's index otherwise."""
    from parsimon.governance.audit import verify_jsonl

    expected = _parse_head(expect_head)
    if jsonl is not None and path is None:
        report = verify_jsonl(_existing(jsonl, "--jsonl"), expected_head=expected)
    else:
        report = _open_log(path, jsonl).verify(expected_head=expected)
    if report.ok:
        typer.echo(f"OK: {report.reason}")
        if report.torn_tail:
            typer.echo("warning: the final line is torn (an append was interrupted); it is ignored", err=True)
        return
    where = "" if report.first_bad is None else f"first bad record: {report.first_bad}; "
    typer.echo(f"FAILED: {where}{report.reason} ({report.n_valid} of {report.n_records} records verified "
               "before it)")
    raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    last: int = typer.Option(20, "--last", min=0, help="Show the last N records (0 = all)."),
    run: str = typer.Option(None, "--run", help="Only records of this run."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP + " A path ending in .jsonl is read as JSONL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """Show the latest records of the proof-of-action log."""
    from rich.table import Table

    records = _open_log(path, None).records(run=run, last=last or None)
    if as_json:
        for r in records:
            typer.echo(json.dumps(r.as_dict(), sort_keys=True, ensure_ascii=False))
        return
    table = Table(title=f"Proof-of-action log ({len(records)} records shown)")
    for col in ("seq", "time (UTC)", "run", "actor", "action", "target", "outcome", "hash"):
        table.add_column(col, justify="right" if col == "seq" else "left", overflow="fold")
    for r in records:
        table.add_row(str(r.seq), r.ts[:19].replace("T", " "), r.run or "", r.actor, r.action, r.target or "", r.outcome or "",
                      r.hash[:12])
    _console().print(table)


@audit_app.command("head")
def audit_head(
    path: Path = typer.Option(None, "--path", help=_PATH_HELP + " A path ending in .jsonl is read as JSONL."),
) -> None:
    """Print the log's anchor N:HASH; store it elsewhere and check it later with `verify --expect-head`."""
    head = _open_log(path, None).head()
    typer.echo(f"{head.n}:{head.hash}")


@audit_app.command("export")
def audit_export(
    out: Path = typer.Argument(..., help="The JSONL file to write (its anchor goes to OUT.head)."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Export the log as JSONL plus a .head anchor, verifiable anywhere with `verify --jsonl`."""
    head = _open_log(path, None).export_jsonl(out)
    typer.echo(f"wrote {head.n} records to {out} (anchor {head.n}:{head.hash})")
