"""``parsimon gateway`` (serve, check, kill switches) and ``parsimon approvals`` (list, show, approve, reject).

Only light modules are imported here; the gateway's server stack loads inside the commands.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer

__all__ = ["COMMANDS", "app", "approvals_app"]

app = typer.Typer(
    help="The governance gateway: one OpenAI-compatible door (and an MCP tool door) in front of model "
    "endpoints and MCP servers, with keys, budgets checked before spending, routing, policy rules, approvals "
    "a person gives, kill switches, signed receipts and a dashboard.",
    no_args_is_help=True,
)
approvals_app = typer.Typer(
    help="Approvals a person gives: actions an agent or the gateway paused until someone approves (maybe with "
    "edited arguments) or rejects them. Unanswered requests expire and count as rejected.",
    no_args_is_help=True,
)
COMMANDS = {"gateway": app, "approvals": approvals_app}

_PATH_HELP = "The governance SQLite file (default $PARSIMON_HOME/governance.sqlite)."
_KINDS = ("global", "key", "run")


def _who(by: str | None) -> str:
    return by or f"cli:{getpass.getuser()}"


@app.command()
def serve(
    config: Path = typer.Option(None, "--config", metavar="FILE", help="Gateway and policy file (TOML or YAML); "
                                "default: the local model, anonymous callers on loopback, no rules."),
    host: str = typer.Option(None, "--host", help="Address to listen on (default from the file, else 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="TCP port (default from the file, else 8780; 0 = a free one)."),
    store: Path = typer.Option(None, "--store", help=_PATH_HELP),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level (debug, info, warning)."),
) -> None:
    """Serve until interrupted; point clients at http://HOST:PORT/v1 (dashboard at /dashboard)."""
    from parsimon.gateway.config import load_config
    from parsimon.gateway.server import serve as run

    cfg = load_config(config)
    changes = {k: v for k, v in (("host", host), ("port", port), ("store", str(store) if store else None))
               if v is not None}
    if changes:
        cfg = cfg.with_overrides(**changes)
    if "host" in changes:  # re-check: a non-loopback host needs an admin token
        from parsimon.gateway.config import _loopback

        if not _loopback(cfg.host) and cfg.admin_token_sha256 is None:
            raise typer.BadParameter(f"{cfg.host} is not loopback: set [gateway] admin_token_env in --config",
                                     param_hint="--host")
    typer.echo(f"gateway on http://{cfg.host}:{cfg.port}/v1 (dashboard http://{cfg.host}:{cfg.port}/dashboard); "
               f"models: {', '.join(sorted(cfg.models))}; Ctrl-C to stop", err=True)
    run(cfg, log_level=log_level)


@app.command()
def check(
    config: Path = typer.Argument(..., help="Gateway and policy file (TOML or YAML) to validate."),
) -> None:
    """Validate a gateway/policy file; errors name the line. Prints what it configures."""
    from parsimon.gateway.config import load_config

    cfg = load_config(config)
    typer.echo(f"OK: {config}")
    typer.echo(f"  upstreams: {', '.join(f'{u.name}={u.base_url}' for u in cfg.upstreams.values())}")
    typer.echo(f"  models: {', '.join(sorted(cfg.models))}; cascades: {', '.join(sorted(cfg.cascades)) or '-'}")
    typer.echo(f"  keys: {', '.join(sorted(cfg.keys)) or '(none: anonymous callers)'}; "
               f"MCP servers: {', '.join(sorted(cfg.mcp)) or '-'}")
    typer.echo(f"  policy: {len(cfg.policy.rules)} rule(s), default {cfg.policy.default!r}, "
               f"{len(cfg.policy.budgets)} budget(s)")


@app.command("hash-token")
def hash_token_cmd(token: str = typer.Argument(..., help="A key's token.")) -> None:
    """Print the sha256 of a token, to put in a key's `token_sha256` instead of the token."""
    from parsimon.gateway.config import hash_token

    typer.echo(hash_token(token))


def _kill_target(key: str | None, run: str | None, everything: bool) -> tuple[str, str | None]:
    chosen = [k for k, v in (("key", key), ("run", run), ("global", everything)) if v]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --key, --run and --global", param_hint="--key/--run/--global")
    return chosen[0], key or run


@app.command()
def kill(
    key: str = typer.Option(None, "--key", help="Stop every new call of this key."),
    run: str = typer.Option(None, "--run", help="Stop every new call of this run."),
    everything: bool = typer.Option(False, "--global", help="Stop every new call."),
    reason: str = typer.Option(None, "--reason", help="Why (shown to callers and on the dashboard)."),
    by: str = typer.Option(None, "--by", help="Who engages it (default cli:<user>)."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Engage a kill switch: new calls stop at once; the gateway cancels the running ones in its scope."""
    from parsimon.gateway.limits import KillSwitch
    from parsimon.governance.audit import get_audit_log

    kind, scope = _kill_target(key, run, everything)
    k = KillSwitch(path).engage(kind, scope, reason=reason, by=_who(by))
    get_audit_log(path).append(actor=_who(by), action="gateway.kill", target=kind,
                               args={"scope": k.scope, "reason": reason}, outcome="engaged")
    typer.echo(f"kill switch engaged: {kind} {k.scope}")


@app.command()
def revive(
    key: str = typer.Option(None, "--key", help="Lift the key's kill switch."),
    run: str = typer.Option(None, "--run", help="Lift the run's kill switch."),
    everything: bool = typer.Option(False, "--global", help="Lift the global kill switch."),
    by: str = typer.Option(None, "--by", help="Who lifts it (default cli:<user>)."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Lift a kill switch."""
    from parsimon.gateway.limits import KillSwitch
    from parsimon.governance.audit import get_audit_log

    kind, scope = _kill_target(key, run, everything)
    released = KillSwitch(path).release(kind, scope)
    if released:
        get_audit_log(path).append(actor=_who(by), action="gateway.revive", target=kind,
                                   args={"scope": scope or "*"}, outcome="released")
    typer.echo(f"kill switch {'lifted' if released else 'was not engaged'}: {kind} {scope or '*'}")


@app.command()
def kills(path: Path = typer.Option(None, "--path", help=_PATH_HELP)) -> None:
    """List the engaged kill switches."""
    from parsimon.gateway.limits import KillSwitch

    active = KillSwitch(path).active()
    if not active:
        typer.echo("no kill switch engaged")
    for k in active:
        typer.echo(f"{k.kind} {k.scope} by {k.by}" + (f": {k.reason}" if k.reason else ""))


def _store(path: Path | None):
    from parsimon.governance.approvals import ApprovalStore

    return ApprovalStore(path)


@approvals_app.command("list")
def approvals_list(
    state: str = typer.Option("pending", "--state", help="pending, approved, rejected, expired, executed or all."),
    run: str = typer.Option(None, "--run", help="Only this run's requests."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """List approval requests (pending ones by default), newest first."""
    from rich.console import Console
    from rich.table import Table

    from parsimon.governance.approvals import STATES

    if state != "all" and state not in STATES:
        raise typer.BadParameter(f"must be one of {[*STATES, 'all']}, got {state!r}", param_hint="--state")
    items = _store(path).list(None if state == "all" else state, run=run)
    if as_json:
        for a in items:
            typer.echo(json.dumps(a.as_dict(), sort_keys=True, default=str))
        return
    table = Table(title=f"Approvals ({state}, {len(items)})")
    table.add_column("id", no_wrap=True)
    for col in ("state", "kind", "action", "run", "key", "risk", "rule", "expires (UTC)", "decided by"):
        table.add_column(col, overflow="fold")
    for a in items:
        d = a.as_dict()
        table.add_row(a.id, a.state, a.kind, a.action, a.run or "", a.key or "", a.risk or "", a.rule or "",
                      (d["expires_utc"] or "")[:19], a.decided_by or "")
    Console().print(table)


@approvals_app.command("show")
def approvals_show(
    approval_id: str = typer.Argument(..., help="The approval id (apr-...)."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Show one request: the action, its arguments, the rule that fired, its state."""
    typer.echo(json.dumps(_store(path).get(approval_id).as_dict(), indent=1, sort_keys=True, default=str))


def _decide(approval_id: str, approve: bool, by: str | None, args: str | None, note: str | None,
            path: Path | None) -> None:
    edited = None
    if args is not None:
        try:
            edited = json.loads(args)
        except ValueError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--args") from None
        if not isinstance(edited, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--args")
    a = _store(path).decide(approval_id, approve=approve, by=_who(by), args=edited, note=note)
    typer.echo(f"{a.id}: {a.state} by {a.decided_by}" + (" (arguments edited)" if a.edited_args is not None else ""))


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str = typer.Argument(..., help="The approval id (apr-...)."),
    by: str = typer.Option(None, "--by", help="Who approves (default cli:<user>); goes to the proof-of-action log."),
    args: str = typer.Option(None, "--args", help="Edited arguments as a JSON object; the action runs with these."),
    note: str = typer.Option(None, "--note", help="A note kept with the decision."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Approve a pending request (the paused agent or gateway call goes ahead)."""
    _decide(approval_id, True, by, args, note, path)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: str = typer.Argument(..., help="The approval id (apr-...)."),
    by: str = typer.Option(None, "--by", help="Who rejects (default cli:<user>); goes to the proof-of-action log."),
    note: str = typer.Option(None, "--note", help="A note kept with the decision."),
    path: Path = typer.Option(None, "--path", help=_PATH_HELP),
) -> None:
    """Reject a pending request (the paused call is refused)."""
    _decide(approval_id, False, by, None, note, path)
