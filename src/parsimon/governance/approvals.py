"""Approvals a person gives: durable pending-approval records in the governance store.

When a policy says an action needs a person (``require_approval``, an "ask" of the escalation policy),
the agent or the gateway calls :meth:`ApprovalStore.request`. The record holds the id, the run, the
action and its argument digest, the risk, the rule that fired, the state, the expiry and the hash of a
resume token (the token itself goes only to the requester). A person approves (optionally with edited
arguments) or rejects it from ``parsimon approvals``, the gateway's dashboard, or :meth:`decide`.

States: ``pending`` → ``approved`` | ``rejected`` | ``expired``; ``approved`` → ``executed`` once the
action ran (:meth:`ApprovalStore.consume`, so a token runs its action at most once). A request that is
still pending at its expiry is ``expired`` and counts as a rejection (fail closed). Every request and
every decision, with who made it, is appended to the proof-of-action log, before any other reader can
see the change it records (in the same commit when the log shares the store's SQLite file, the default;
otherwise written while the change is still uncommitted), so the log's order is the order of events.

The requester may die while it waits: it keeps the resume token (for example in its run checkpoint)
and, once restarted, calls :meth:`ApprovalStore.resume` with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parsimon.errors import ApprovalError, ApprovalPending, ApprovalRejected
from parsimon.governance.chain import canonical_json
from parsimon.governance.scope import current_scope
from parsimon.governance.store import Handle, resolve_path

__all__ = ["STATES", "Approval", "ApprovalAnswer", "ApprovalAsk", "ApprovalStore", "digest", "get_approvals"]

STATES = ("pending", "approved", "rejected", "expired", "executed")
_COLUMNS = ("id", "created", "expires", "run", "workflow", "key", "kind", "action", "target", "args_json",
            "args_digest", "risk", "rule", "reason", "state", "decided_by", "decided_at", "note",
            "edited_args_json", "request_id", "token_hash")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, created REAL NOT NULL, expires REAL NOT NULL, run TEXT, workflow TEXT, key TEXT,
    kind TEXT NOT NULL, action TEXT NOT NULL, target TEXT, args_json TEXT, args_digest TEXT NOT NULL,
    risk TEXT, rule TEXT, reason TEXT, state TEXT NOT NULL, decided_by TEXT, decided_at REAL, note TEXT,
    edited_args_json TEXT, request_id TEXT, token_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals(state);
CREATE INDEX IF NOT EXISTS approvals_token ON approvals(token_hash);
CREATE UNIQUE INDEX IF NOT EXISTS approvals_request ON approvals(key, request_id)
"""


def digest(value: Any) -> str:
    """Hex sha256 of the canonical JSON of ``value`` (what the log records for arguments and results)."""
    return hashlib.sha256(canonical_json(value, "value").encode("utf-8")).hexdigest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Approval:
    """One approval record (times are seconds since the epoch)."""

    id: str
    created: float
    expires: float
    run: str | None
    workflow: str | None
    key: str | None  # the gateway key that asked (None in-process)
    kind: str  # "model", "tool" or "action"
    action: str  # the model, tool or action name
    target: str | None
    args: dict | None
    args_digest: str
    risk: str | None
    rule: str | None
    reason: str | None
    state: str
    decided_by: str | None
    decided_at: float | None
    note: str | None
    edited_args: dict | None
    request_id: str | None

    @property
    def approved(self) -> bool:
        """True once a person approved it (also after it was executed)."""
        return self.state in ("approved", "executed")

    @property
    def final(self) -> bool:
        """True once it is decided (or expired)."""
        return self.state != "pending"

    @property
    def effective_args(self) -> dict | None:
        """The arguments to run with: the edited ones when a person changed them."""
        return self.edited_args if self.edited_args is not None else self.args

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ISO times beside the epoch seconds."""
        d = dict(self.__dict__)
        d.update(created_utc=_iso(self.created), expires_utc=_iso(self.expires), decided_utc=_iso(self.decided_at))
        return d


def _row_to_approval(row) -> Approval:
    d = dict(zip(_COLUMNS, row, strict=True))
    return Approval(
        id=d["id"], created=d["created"], expires=d["expires"], run=d["run"], workflow=d["workflow"],
        key=d["key"], kind=d["kind"], action=d["action"], target=d["target"],
        args=None if d["args_json"] is None else json.loads(d["args_json"]), args_digest=d["args_digest"],
        risk=d["risk"], rule=d["rule"], reason=d["reason"], state=d["state"], decided_by=d["decided_by"],
        decided_at=d["decided_at"], note=d["note"],
        edited_args=None if d["edited_args_json"] is None else json.loads(d["edited_args_json"]),
        request_id=d["request_id"],
    )


class ApprovalStore:
    """Pending approvals in the governance SQLite store (see the module docstring).

    Args:
        path: The SQLite file (default ``$PARSIMON_HOME/governance.sqlite``).
        audit: The proof-of-action log that records requests and decisions (default: the log in ``path``).
        clock: Seconds since the epoch (injectable for tests).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, audit=None, clock: Callable[[], float] = time.time):
        self.path: Path = resolve_path(path)
        self._db = Handle(self.path, synchronous="normal", schema=_SCHEMA)
        if audit is None:
            from parsimon.governance.audit import get_audit_log

            audit = get_audit_log(self.path)
        self.audit, self._clock = audit, clock
        self._same_file: bool | None = None

    def _log_in(self, conn, **record) -> None:
        """Write one log record inside the caller's write transaction on ``conn``, so that no other
        reader sees a request or a decision before its record: in the same commit when the log shares
        this store's SQLite file, otherwise appended to the log before this transaction commits."""
        if self._same_file:
            self.audit.append_in(conn, **record)
        else:
            self.audit.append(**record)

    def _begin_logged(self):
        """:meth:`Handle.transaction`, with the log's tables created first when it shares the file (not
        from inside the write transaction)."""
        if self._same_file is None:
            from parsimon.governance.audit import AuditLog

            self._same_file = isinstance(self.audit, AuditLog) and Path(self.audit.path) == self.path
            if self._same_file:
                _ = self.audit._db.conn
        return self._db.transaction()

    def __repr__(self) -> str:
        return f"ApprovalStore({str(self.path)!r})"

    def _select(self, where: str, params: tuple, conn=None) -> list[Approval]:
        """The records matching ``where``, read through ``conn`` (an open transaction) or a fresh read."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM approvals {where}"
        if conn is not None:
            return [_row_to_approval(r) for r in conn.execute(sql, params).fetchall()]
        with self._db.read() as fresh:
            rows = fresh.execute(sql, params).fetchall()
        return [_row_to_approval(r) for r in rows]

    def _row(self, conn, approval_id: str) -> Approval:
        """The record ``approval_id`` as the open transaction ``conn`` sees it."""
        return self._select("WHERE id=?", (approval_id,), conn)[0]

    def request(self, *, kind: str, action: str, args: dict | None = None, target: str | None = None,
                run: str | None = None, workflow: str | None = None, key: str | None = None,
                risk: str | None = None, rule: str | None = None, reason: str | None = None,
                expires_s: float = 900.0, request_id: str | None = None,
                requester: str = "agent") -> tuple[Approval, str | None]:
        """Create a pending approval and log the request.

        Args:
            kind: ``"model"``, ``"tool"`` or ``"action"``.
            action: The model, tool or action name.
            args: The arguments a person approves (a JSON object).
            target: What the action acts on.
            run: The run (default: the current scope's).
            workflow: The workflow (default: the current scope's).
            key: The gateway key asking.
            risk: ``"low"``, ``"medium"`` or ``"high"``.
            rule: The policy rule that fired.
            reason: Why a person is asked.
            expires_s: Seconds until the request is rejected unanswered.
            request_id: The client's idempotency key: a second request with the same ``key`` and
                ``request_id`` returns the first record (and no new token).
            requester: The log's actor for the request.

        Returns:
            ``(approval, resume_token)``; the token is None when ``request_id`` found an existing record.
        """
        if kind not in ("model", "tool", "action"):
            raise ValueError(f"`kind` must be 'model', 'tool' or 'action', got {kind!r}")
        if not isinstance(action, str) or not action:
            raise ValueError(f"`action` must be a non-empty string, got {action!r}")
        if isinstance(expires_s, bool) or not isinstance(expires_s, (int, float)) or not expires_s > 0:
            raise ValueError(f"`expires_s` must be a number > 0, got {expires_s!r}")
        if args is not None and not isinstance(args, dict):
            raise ValueError(f"`args` must be a dict or None, got {type(args).__name__}")
        if request_id is not None:
            found = self.find(key, request_id)
            if found is not None:
                return found, None
        scope = current_scope()
        run = run if run is not None else scope.run
        workflow = workflow if workflow is not None else scope.workflow
        token = secrets.token_urlsafe(24)
        now = self._clock()
        aid = f"apr-{secrets.token_hex(6)}"
        args_text = None if args is None else canonical_json(args, "args")
        values = (aid, now, now + float(expires_s), run, workflow, key, kind, action, target, args_text,
                  digest(args), risk, rule, reason, "pending", None, None, None, None, request_id,
                  _token_hash(token))
        with self._begin_logged() as conn:
            if request_id is not None:
                row = conn.execute("SELECT id FROM approvals WHERE key IS ? AND request_id=?",
                                   (key, request_id)).fetchone()
                if row is not None:
                    token = None
                    aid = row[0]
            if token is not None:
                conn.execute(f"INSERT INTO approvals ({', '.join(_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(_COLUMNS))})", values)
                approval = self._row(conn, aid)
                self._log_in(conn, actor=requester if key is None else f"key:{key}", action="approval.request",
                             target=action, run=run,
                             args={"approval": aid, "kind": kind, "args_digest": approval.args_digest,
                                   "risk": risk, "rule": rule, "expires_utc": _iso(approval.expires)},
                             outcome="pending")
        return self.get(aid, expire=False), token

    def get(self, approval_id: str, *, expire: bool = True) -> Approval:
        """The record ``approval_id`` (a pending one past its expiry is marked expired first)."""
        if expire:
            self.expire_due()
        found = self._select("WHERE id=?", (approval_id,))
        if not found:
            raise ApprovalError(f"no approval {approval_id!r}")
        return found[0]

    def find(self, key: str | None, request_id: str) -> Approval | None:
        """The record a client created with this ``request_id`` (None if there is none)."""
        self.expire_due()
        found = self._select("WHERE key IS ? AND request_id=?", (key, request_id))
        return found[0] if found else None

    def by_token(self, token: str) -> Approval:
        """The record a resume token belongs to."""
        self.expire_due()
        found = self._select("WHERE token_hash=?", (_token_hash(str(token)),))
        if not found:
            raise ApprovalError("unknown resume token")
        return found[0]

    def list(self, state: str | None = None, *, run: str | None = None, limit: int | None = None) -> list[Approval]:
        """Records, newest first, optionally of one state and one run."""
        if state is not None and state not in STATES:
            raise ValueError(f"`state` must be one of {list(STATES)} or None, got {state!r}")
        self.expire_due()
        clauses, params = [], []
        for col, value in (("state", state), ("run", run)):
            if value is not None:
                clauses.append(f"{col}=?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        where += " ORDER BY created DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return self._select(where, tuple(params))

    def expire_due(self) -> list[Approval]:
        """Mark pending records past their expiry as expired (each logged); return them."""
        now = self._clock()
        with self._db.read() as conn:
            due = conn.execute("SELECT id FROM approvals WHERE state='pending' AND expires<=?", (now,)).fetchall()
        if not due:
            return []
        out = []
        with self._begin_logged() as conn:
            for (aid,) in due:
                n = conn.execute("UPDATE approvals SET state='expired', decided_by='system:expiry', decided_at=? "
                                 "WHERE id=? AND state='pending'", (now, aid)).rowcount
                if n:
                    a = self._row(conn, aid)
                    self._log_in(conn, actor="system:expiry", action="approval.expire", target=a.action, run=a.run,
                                 args={"approval": aid, "args_digest": a.args_digest},
                                 outcome="rejected (expired)")
                    out.append(a)
        return out

    def decide(self, approval_id: str, *, approve: bool, by: str, args: dict | None = None,
               note: str | None = None) -> Approval:
        """Approve (optionally with edited ``args``) or reject a pending request; log who decided.

        Raises:
            ApprovalError: The record is unknown or no longer pending.
            ApprovalRejected: It expired before the decision (it stays rejected).
        """
        if not isinstance(by, str) or not by:
            raise ValueError(f"`by` must name who decides, got {by!r}")
        if args is not None and (not approve or not isinstance(args, dict)):
            raise ValueError("`args` (edited arguments) must be a dict and only go with an approval")
        current = self.get(approval_id)
        if current.state == "expired":
            raise ApprovalRejected(f"approval {approval_id} expired before the decision", approval_id=approval_id,
                                   state="expired")
        if current.state != "pending":
            raise ApprovalError(f"approval {approval_id} is already {current.state} (by {current.decided_by})")
        state = "approved" if approve else "rejected"
        edited = None if args is None or args == current.args else canonical_json(args, "args")
        now = self._clock()
        verb = "edit" if edited is not None else ("approve" if approve else "reject")
        with self._begin_logged() as conn:
            n = conn.execute("UPDATE approvals SET state=?, decided_by=?, decided_at=?, note=?, edited_args_json=? "
                             "WHERE id=? AND state='pending' AND expires>?",
                             (state, by, now, note, edited, approval_id, now)).rowcount
            if n:
                a = self._row(conn, approval_id)
                self._log_in(conn, actor=by, action=f"approval.{verb}", target=a.action, run=a.run,
                             args={"approval": approval_id, "args_digest": a.args_digest,
                                   **({"edited_args_digest": digest(a.edited_args)} if edited is not None else {}),
                                   **({"note": note} if note else {})},
                             outcome=state)
        if n == 0:
            again = self.get(approval_id)
            raise ApprovalError(f"approval {approval_id} is already {again.state}")
        return a

    def consume(self, approval_id: str) -> Approval:
        """Mark an approved record executed (once); return it with the arguments to run.

        Raises:
            ApprovalPending: Still waiting for a decision.
            ApprovalRejected: Rejected or expired.
            ApprovalError: Already executed (a token runs its action once).
        """
        a = self.get(approval_id)
        if a.state == "pending":
            raise ApprovalPending(f"approval {a.id} is still pending", approval_id=a.id, expires=a.expires)
        if a.state in ("rejected", "expired"):
            raise ApprovalRejected(f"approval {a.id} was {a.state}"
                                   + (f" by {a.decided_by}" if a.state == "rejected" else ""),
                                   approval_id=a.id, state=a.state)
        with self._db.transaction() as conn:
            n = conn.execute("UPDATE approvals SET state='executed' WHERE id=? AND state='approved'",
                             (a.id,)).rowcount
        if n == 0:
            raise ApprovalError(f"approval {a.id} was already executed; a resume token runs its action once")
        return self.get(a.id, expire=False)

    def wait(self, approval_id: str, timeout: float, *, poll: float = 0.1) -> Approval:
        """Poll until the record is decided or expired, or ``timeout`` seconds passed; return it."""
        deadline = time.monotonic() + timeout
        while True:
            a = self.get(approval_id)
            if a.final or time.monotonic() >= deadline:
                return a
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    async def wait_async(self, approval_id: str, timeout: float, *, poll: float = 0.1) -> Approval:
        """As :meth:`wait`, without blocking an event loop between polls."""
        deadline = time.monotonic() + timeout
        while True:
            a = self.get(approval_id)
            if a.final or time.monotonic() >= deadline:
                return a
            await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def resume(self, token: str, *, wait_s: float = 0.0) -> Approval:
        """The record of a resume token, after waiting up to ``wait_s`` for its decision."""
        a = self.by_token(token)
        return a if a.final or wait_s <= 0 else self.wait(a.id, wait_s)

    def close(self) -> None:
        """Close this process's connection."""
        self._db.close()


@dataclass(frozen=True)
class ApprovalAnswer:
    """What :class:`ApprovalAsk` returns to :func:`~parsimon.governance.escalate`."""

    approved: bool
    args: dict | None
    id: str
    state: str


class ApprovalAsk:
    """An ``ask`` hook for :func:`~parsimon.governance.escalate` that pauses the agent for a person.

    It writes a pending approval, hands the record and its resume token to ``on_pending`` (save them in
    the run's checkpoint there), then waits up to ``wait_s`` seconds for the decision. Approved (maybe
    with edited arguments) → the action goes ahead; rejected or expired → refused. Still pending after
    ``wait_s`` → :class:`~parsimon.errors.ApprovalPending` with the token, so the agent can stop and
    :meth:`resume` later, also from a new process.

    Args:
        store: The approval store (default: the one in ``$PARSIMON_HOME``).
        wait_s: How long to wait for the decision before raising ApprovalPending.
        expires_s: How long the request stays open (then it is rejected).
        on_pending: ``on_pending(approval, token)``, called before waiting.
        requester: The log's actor for the request.
    """

    def __init__(self, store: ApprovalStore | None = None, *, wait_s: float = 300.0, expires_s: float = 900.0,
                 on_pending: Callable[[Approval, str], Any] | None = None, requester: str = "agent"):
        self.store = store or get_approvals()
        self.wait_s, self.expires_s = wait_s, expires_s
        self.on_pending, self.requester = on_pending, requester

    def __call__(self, action, decision) -> ApprovalAnswer:
        rule = next((r for r in decision.rules if r.startswith("policy:")), decision.rules[0] if decision.rules else None)
        approval, token = self.store.request(
            kind="action", action=action.kind, target=action.target, args=action.args,
            risk="high" if "irreversible" in decision.rules else "medium", rule=rule, reason=decision.reason,
            expires_s=self.expires_s, requester=self.requester)
        if self.on_pending is not None:
            self.on_pending(approval, token)
        return self._answer(self.store.wait(approval.id, self.wait_s), token)

    def resume(self, token: str, *, wait_s: float | None = None) -> ApprovalAnswer:
        """The decision on a request made before (also by another process), waiting up to ``wait_s``."""
        a = self.store.resume(token, wait_s=self.wait_s if wait_s is None else wait_s)
        return self._answer(a, token)

    def _answer(self, a: Approval, token: str | None) -> ApprovalAnswer:
        if a.state == "pending":
            raise ApprovalPending(f"approval {a.id} for {a.action!r} is still pending; resume with its token",
                                  approval_id=a.id, resume_token=token, expires=a.expires)
        return ApprovalAnswer(a.approved, a.edited_args, a.id, a.state)


_STORES: dict[tuple[int, Path], ApprovalStore] = {}


def get_approvals(path: str | os.PathLike | None = None) -> ApprovalStore:
    """This process's :class:`ApprovalStore` for ``path`` (default ``$PARSIMON_HOME/governance.sqlite``)."""
    resolved = resolve_path(path)
    key = (os.getpid(), resolved)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = ApprovalStore(resolved)
    return store
