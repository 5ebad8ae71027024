"""``parsimon runs list|show``: run folders joined with the ledger (spend) and the proof-of-action log.

Spend comes from the governance ledger by run id; the audit status says whether the log's hash chain
verifies up to and including the run's last record (a break after it does not touch the run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.run import find_runs, read_run

__all__ = ["list_runs", "render_run", "render_runs", "show_run"]

_SPEND_KEYS = ("tokens", "money", "actions", "wall_s", "gpu_s")


class _Governance:
    """Ledger totals and audit verification, computed once for many runs."""

    def __init__(self) -> None:
        from parsimon.governance import get_audit_log, get_ledger

        self.ledger = get_ledger()
        self.log = get_audit_log()
        self._report = None

    def spend(self, run_id: str) -> dict[str, float]:
        rows = self.ledger.totals("run", run=run_id)
        if not rows:
            return {k: 0 for k in _SPEND_KEYS}
        return {k: rows[0][k] for k in _SPEND_KEYS}

    def spend_by_component(self, run_id: str) -> list[dict[str, Any]]:
        return self.ledger.totals("component", run=run_id)

    def audit(self, run_id: str) -> dict[str, Any]:
        records = self.log.records(run=run_id)
        if self._report is None:
            self._report = self.log.verify()
        rep = self._report
        if not records:
            return {"records": 0, "verified": None}
        last = records[-1].seq
        # verify() names the first bad record; everything before it is intact.
        first_bad = getattr(rep, "first_bad", None)
        ok = rep.ok or (first_bad is not None and last < first_bad)
        return {"records": len(records), "verified": bool(ok),
                "message": "" if ok else rep.reason}


def _summary(info: dict[str, Any], gov: _Governance | None) -> dict[str, Any]:
    rid = info.get("run_id")
    row = {"run_id": rid, "name": info.get("name"), "status": info.get("status"), "dir": info.get("dir"),
           "wall_s": info.get("wall_s"), "started_utc": info.get("started_utc"), "metrics": info.get("metrics", {})}
    if gov is not None and rid:
        row["spend"] = gov.spend(rid)
        row["audit"] = gov.audit(rid)
    return row


def list_runs(root: str | os.PathLike, *, governance: bool = True) -> list[dict[str, Any]]:
    """One summary per run folder under ``root``: id, name, status, metrics, spend, audit status."""
    root = Path(root)
    if not root.exists():
        raise ConfigError(f"`root` {root}: no such folder")
    gov = _Governance() if governance else None
    return [_summary(read_run(p), gov) for p in find_runs(root)]


def show_run(run: str, *, root: str | os.PathLike = "runs") -> dict[str, Any]:
    """The full record of one run (a folder, or an id found under ``root``)."""
    path = Path(run)
    if not (path / "config.json").is_file():
        matches = [p for p in find_runs(root) if read_run(p).get("run_id") == run] if Path(root).is_dir() else []
        if not matches:
            raise ConfigError(f"`run` {run!r} is neither a run folder nor a run id under {root}")
        path = matches[0]
    info = read_run(path)
    gov = _Governance()
    out = _summary(info, gov)
    out["config"] = info["config"]
    out["spend_by_component"] = gov.spend_by_component(info["run_id"])
    return out


def _fmt_metrics(metrics: dict[str, Any], n: int = 3) -> str:
    parts = []
    for k, v in list(metrics.items())[:n]:
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def render_runs(rows: list[dict[str, Any]]) -> None:
    """Print a table of :func:`list_runs` rows."""
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "name", "status", "wall s", "tokens", "money", "audit", "metrics", "folder")
    for r in rows:
        spend = r.get("spend") or {}
        audit = r.get("audit") or {}
        verified = audit.get("verified")
        audit_s = "-" if verified is None else (f"ok ({audit['records']})" if verified else "BROKEN")
        table.add_row(str(r["run_id"]), str(r["name"]), str(r["status"]),
                      f"{(r.get('wall_s') or 0):.1f}", str(int(spend.get("tokens", 0))),
                      f"{spend.get('money', 0):.4g}", audit_s, _fmt_metrics(r.get("metrics", {})), str(r["dir"]))
    Console(width=200).print(table)
    if not rows:
        print("no runs found")


def render_run(info: dict[str, Any]) -> None:
    """Print one run's record as text."""
    import json

    print(f"run {info['run_id']} ({info['name']}): {info['status']}, {info.get('wall_s') or 0:.1f} s wall")
    print(f"folder: {info['dir']}")
    print("metrics:")
    for k, v in info.get("metrics", {}).items():
        print(f"  {k} = {v}")
    print("spend: " + ", ".join(f"{k}={v:g}" for k, v in (info.get("spend") or {}).items()))
    for row in info.get("spend_by_component", []):
        print(f"  {row['component']}: " + ", ".join(f"{k}={row[k]:g}" for k in _SPEND_KEYS))
    audit = info.get("audit") or {}
    print(f"audit: {audit.get('records', 0)} records, "
          + ("no records" if audit.get("verified") is None else ("verified" if audit["verified"] else
                                                                   f"NOT verified: {audit.get('message')}")))
    print("config: " + json.dumps(info["config"].get("config", {}), sort_keys=True))
