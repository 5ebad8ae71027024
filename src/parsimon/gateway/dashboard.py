"""What the dashboard page shows, as one JSON document (``GET /dashboard/api/state``): spend by run,
workflow and component against the budgets, the calls in flight, pending and recent approvals, the latest
proof-of-action records with the log's verification status and the last signed checkpoint, kill switches.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["dashboard_state"]

_VERIFY_TTL_S = 2.0  # the chain is re-verified at most this often however many pages poll


def _spend(gw) -> dict[str, Any]:
    ledger = gw.ledger
    budgets = []
    for b in ledger.budgets():
        scope = {b["kind"]: b["scope"]}
        spent = ledger.spent(**scope, metric=b["metric"])
        reserved = ledger.reserved(**scope, metric=b["metric"])
        budgets.append({**b, "spent": spent, "reserved": reserved,
                        "remaining": None if b["hard"] is None else b["hard"] - spent - reserved})
    return {by: ledger.totals(by) for by in ("run", "workflow", "component")} | {"budgets": budgets}


def _approvals(gw) -> dict[str, Any]:
    pending = [a.as_dict() for a in gw.approvals.list("pending")]
    recent = [a.as_dict() for a in gw.approvals.list(limit=40) if a.state != "pending"][:20]
    return {"pending": pending, "recent": recent}


def _records(gw) -> list[dict]:
    out = []
    for r in reversed(gw.audit.records(last=30)):
        out.append({"seq": r.seq, "ts": r.ts, "run": r.run, "actor": r.actor, "action": r.action,
                    "target": r.target, "outcome": r.outcome, "hash": r.hash})
    return out


def _verify(gw) -> dict[str, Any]:
    report = gw.audit.verify()
    return {"ok": report.ok, "reason": report.reason, "n_records": report.n_records, "checked_at": time.time()}


async def dashboard_state(gw) -> dict[str, Any]:
    """The dashboard's document for gateway ``gw``."""
    cached = getattr(gw, "_verify_cache", None)
    if cached is None or time.time() - cached["checked_at"] > _VERIFY_TTL_S:
        loop = asyncio.get_running_loop()
        cached = await loop.run_in_executor(gw._bg, _verify, gw)
        gw._verify_cache = cached
    spend, approvals, records, kills = await asyncio.gather(
        gw.io(_spend, gw), gw.io(_approvals, gw), gw.io(_records, gw), gw.io(gw.kills.active))
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
