"""What the dashboard page shows, as one JSON document (``GET /dashboard/api/state``): spend by run,
workflow and component against the budgets, the calls in flight, pending and recent approvals, the latest
proof-of-action records with the log's verification status and the last signed checkpoint, kill switches.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["dashboard_state"]

_VERIFY_TTL_S = 2.0  # the chain is re-verified at most this often however many pages poll


def _readers(gw) -> tuple:
    """The dashboard's own connections (so its queries never wait on, or hold up, the gateway's writes)."""
    readers = getattr(gw, "_dashboard_readers", None)
    if readers is None:
        from parsimon.governance import ApprovalStore, AuditLog, Ledger

        log = AuditLog(gw.path)
        readers = gw._dashboard_readers = (Ledger(gw.path), log, ApprovalStore(gw.path, audit=log))
    return readers


def _spend(gw) -> dict[str, Any]:
    ledger = _readers(gw)[0]
    budgets = []
    for b in ledger.budgets():
        scope = {b["kind"]: b["scope"]}
        spent = ledger.spent(**scope, metric=b["metric"])
        reserved = ledger.reserved(**scope, metric=b["metric"])
        budgets.append({**b, "spent": spent, "reserved": reserved,
                        "remaining": None if b["hard"] is None else b["hard"] - spent - reserved})
    return {by: ledger.totals(by) for by in ("run", "workflow", "component")} | {"budgets": budgets}


def _approvals(gw) -> dict[str, Any]:
    store = _readers(gw)[2]
    pending = [a.as_dict() for a in store.list("pending")]
    recent = [a.as_dict() for a in store.list(limit=40) if a.state != "pending"][:20]
    return {"pending": pending, "recent": recent}


def _records(gw) -> list[dict]:
    out = []
    for r in reversed(_readers(gw)[1].records(last=30)):
        out.append({"seq": r.seq, "ts": r.ts, "run": r.run, "actor": r.actor, "action": r.action,
                    "target": r.target, "outcome": r.outcome, "hash": r.hash})
    return out


def _verify(gw) -> dict[str, Any]:
    report = _readers(gw)[1].verify()
    return {"ok": report.ok, "reason": report.reason, "n_records": report.n_records, "checked_at": time.time()}


async def dashboard_state(gw) -> dict[str, Any]:
    """The dashboard's document for gateway ``gw``."""
    cached = getattr(gw, "_verify_cache", None)
    if cached is None or time.time() - cached["checked_at"] > _VERIFY_TTL_S:
        cached = await gw.background(_verify, gw)
        gw._verify_cache = cached
    spend, approvals, records = await gw.background(lambda: (_spend(gw), _approvals(gw), _records(gw)))
    kills = gw.kills.active()
    cp = gw.last_checkpoint
    head = records[0]["seq"] + 1 if records else 0
    return {
        "now": time.time(), "uptime_s": round(time.time() - gw.started, 1), "store": str(gw.path),
        "spend": spend, "live": [c.as_dict() for c in gw.live.values()], "approvals": approvals,
        "audit": {"records": records, "verify": cached, "checkpoint": cp,
                  "unsigned": head - (cp["n"] if cp else 0), "checkpoint_error": gw.checkpoint_error},
        "kills": [k.__dict__ for k in kills], "counters": dict(gw.counters),
        "models": gw.router.names(), "tools": [t.name for t in gw.mcp.tools()],
        "keys": sorted(gw.config.keys),
    }
