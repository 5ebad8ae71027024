"""Reservations: an upper bound of a call's cost held against the hard limits before the call, settled after.

A call whose cost is only known afterwards (a model call) first reserves an upper bound
(:meth:`Reservations.reserve`: checked against the hard limits together with what is spent and every
other outstanding reservation, in one ``BEGIN IMMEDIATE`` transaction), then settles it with the actual
amounts (:meth:`Reservations.settle`) or releases it. :func:`settle_and_record` settles and appends the
call's proof-of-action record in one commit. These are methods of :class:`~parsimon.governance.Ledger`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from parsimon.governance.amounts import METRICS, check_amounts, check_metric, check_scope_args

__all__ = ["Reservations", "settle_and_record"]


class Reservations:
    """The reservation methods of :class:`~parsimon.governance.Ledger` (a mixin: it uses the ledger's
    connection, budget check and event insert)."""

    def reserve(self, *, component: str, tokens_in: int = 0, tokens_out: int = 0, money: float = 0.0,
                actions: int = 0, wall_s: float = 0.0, gpu_s: float = 0.0, run: str | None = None,
                workflow: str | None = None, ttl_s: float = 600.0, meta: dict | None = None) -> int:
        """Hold an upper bound of a call's cost against the hard limits before the call is made.

        The check counts what is spent plus every other outstanding reservation of the run and the
        workflow, and the reservation is written in the same ``BEGIN IMMEDIATE`` transaction, so two
        concurrent calls can never both pass against the same remaining budget.

        Args:
            component: What will spend it (as for :meth:`charge`).
            tokens_in: Upper bound of the prompt tokens.
            tokens_out: Upper bound of the completion tokens.
            money: Upper bound of the cost.
            actions: Actions the call will take.
            wall_s: Wall seconds to hold (usually 0).
            gpu_s: GPU seconds to hold (usually 0).
            run: The run (default: the current scope's).
            workflow: The workflow (default: the current scope's).
            ttl_s: Seconds after which an unsettled reservation stops counting (its holder died).
            meta: Free-form JSON-serialisable details.

        Returns:
            The reservation id, for :meth:`settle` or :meth:`release`.

        Raises:
            BudgetExceeded: A hard limit would be crossed; nothing is reserved.
        """
        if not isinstance(component, str) or not component:
            raise ValueError(f"`component` must be a non-empty string, got {component!r}")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
            raise ValueError(f"`ttl_s` must be a number > 0, got {ttl_s!r}")
        amounts = check_amounts(tokens_in, tokens_out, money, actions, wall_s, gpu_s)
        meta_text = None if meta is None else json.dumps(meta, sort_keys=True, allow_nan=False)
        run, workflow, pairs = self._scopes(run, workflow)
        now = time.time()
        with self._db.transaction() as conn:
            self._check(conn, pairs, amounts)
            cur = conn.execute(
                "INSERT INTO ledger_reservations (ts, expires, run, workflow, component, tokens, money, actions, "
                "wall_s, gpu_s, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, now + float(ttl_s), run, workflow, component, *(amounts[m] for m in METRICS), meta_text))
            return int(cur.lastrowid)

    def settle(self, reservation: int, *, component: str, tokens_in: int = 0, tokens_out: int = 0,
               money: float = 0.0, actions: int = 0, wall_s: float = 0.0, gpu_s: float = 0.0,
               run: str | None = None, workflow: str | None = None, meta: dict | None = None) -> int:
        """Replace a reservation by the call's actual cost, in one transaction; return the event's id.

        The actual amounts are recorded even when they exceed the reservation or a hard limit (the
        money is spent already); ``meta["overrun"]`` then lists the metrics that exceeded it. Soft limits
        are reported as by :meth:`charge`.
        """
        if not isinstance(component, str) or not component:
            raise ValueError(f"`component` must be a non-empty string, got {component!r}")
        amounts = check_amounts(tokens_in, tokens_out, money, actions, wall_s, gpu_s)
        run, workflow, pairs = self._scopes(run, workflow)
        with self._db.transaction() as conn:
            event_id, soft_hits = self.settle_in(conn, reservation, component=component, amounts=amounts,
                                                 tokens_in=tokens_in, tokens_out=tokens_out, run=run,
                                                 workflow=workflow, pairs=pairs, meta=meta)
        self.report_soft(soft_hits)
        return event_id

    def settle_in(self, conn, reservation: int, *, component: str, amounts: dict, tokens_in: int, tokens_out: int,
                  run: str | None, workflow: str | None, pairs: list, meta: dict | None) -> tuple[int, list]:
        """:meth:`settle`'s writes inside a transaction the caller holds (see :func:`settle_and_record`);
        return the event id and the soft-limit crossings to report after the commit."""
        meta = dict(meta or {})
        rows = conn.execute("DELETE FROM ledger_reservations WHERE id=? RETURNING tokens, money, actions",
                            (int(reservation),)).fetchall()
        row = rows[0] if rows else None
        if row is not None:
            held = dict(zip(("tokens", "money", "actions"), row, strict=True))
            over = [m for m in held if amounts[m] > held[m] + 1e-12]
            if over:
                meta["overrun"] = over
        else:
            meta["reservation"] = "expired or unknown"
        soft_hits = self._check(conn, pairs, amounts, hard_check=False)
        meta_text = json.dumps(meta, sort_keys=True, allow_nan=False) if meta else None
        return self._insert(conn, run, workflow, pairs, component, amounts, tokens_in, tokens_out, meta_text), soft_hits

    def report_soft(self, soft_hits: list) -> None:
        """Warn (once per scope and metric) and call the callbacks for soft-limit crossings."""
        for kind, scope, metric, soft, new in soft_hits:
            self._soft_limit(kind, scope, metric, soft, new)

    def release(self, reservation: int) -> bool:
        """Drop a reservation without charging (the call was not made); True if it was outstanding."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM ledger_reservations WHERE id=?", (int(reservation),)).rowcount > 0

    def reserved(self, *, run: str | None = None, workflow: str | None = None, metric: str) -> float:
        """What the unexpired reservations of a run or a workflow hold of one metric."""
        kind, scope = check_scope_args(run, workflow)
        check_metric(metric)
        with self._db.read() as conn:
            return self._reserved(conn, kind, scope, time.time())[metric]

    def reservations(self) -> list[dict[str, Any]]:
        """The outstanding reservations (expired ones included), oldest first."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT id, ts, expires, run, workflow, component, tokens, money, actions, wall_s, "
                                "gpu_s, meta FROM ledger_reservations ORDER BY id").fetchall()
        cols = ("id", "ts", "expires", "run", "workflow", "component", *METRICS, "meta")
        return [{**dict(zip(cols, r, strict=True)), "meta": json.loads(r[-1]) if r[-1] else None} for r in rows]

    def purge_expired(self) -> int:
        """Delete expired reservations; return how many."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM ledger_reservations WHERE expires<=?", (time.time(),)).rowcount


def settle_and_record(ledger, audit, reservation: int, *, settle: dict, record: dict) -> tuple[int, Any]:
    """Settle a reservation and append its proof-of-action record in one commit.

    When the ledger and the log share a SQLite file (the default governance store), both writes happen
    in one ``BEGIN IMMEDIATE`` transaction: a crash leaves both or neither. Otherwise they run one after
    the other (settle first).

    Args:
        ledger: The ledger holding the reservation.
        audit: The proof-of-action log (:class:`~parsimon.governance.AuditLog` or a JSONL log).
        reservation: The reservation id.
        settle: Keyword arguments of :meth:`Ledger.settle`.
        record: Keyword arguments of ``audit.append``.

    Returns:
        ``(ledger event id, AuditRecord)``.
    """
    from parsimon.governance.audit import AuditLog

    if not isinstance(audit, AuditLog) or audit.path != ledger.path:
        event = ledger.settle(reservation, **settle)
        return event, audit.append(**record)
    s = dict(settle)
    component = s.pop("component")
    if not isinstance(component, str) or not component:
        raise ValueError(f"`component` must be a non-empty string, got {component!r}")
    counts = {k: s.pop(k, 0) for k in ("tokens_in", "tokens_out", "money", "actions", "wall_s", "gpu_s")}
    amounts = check_amounts(**counts)
    run, workflow, pairs = ledger._scopes(s.pop("run", None), s.pop("workflow", None))
    meta = s.pop("meta", None)
    if s:
        raise ValueError(f"unknown settle argument(s) {sorted(s)}")
    _ = audit._db.conn  # create the log's tables now: not from inside our write transaction
    with ledger._db.transaction() as conn:
        event, soft_hits = ledger.settle_in(conn, reservation, component=component, amounts=amounts,
                                            tokens_in=counts["tokens_in"], tokens_out=counts["tokens_out"], run=run,
                                            workflow=workflow, pairs=pairs, meta=meta)
        rec = audit.append_in(conn, **{**record, "after": {**(record.get("after") or {}), "ledger_event": event}})
    ledger.report_soft(soft_hits)
    return event, rec
