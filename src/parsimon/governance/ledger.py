"""The cost ledger: every token, dollar, environment action, second and GPU-second an agent spends.

Each :meth:`Ledger.charge` records one event tagged with a run, a workflow and a component. Budgets are
set per run or per workflow and per metric, with a soft limit (a :class:`BudgetWarning` and the
registered callbacks, once per scope and metric) and a hard limit (:class:`parsimon.errors.BudgetExceeded`
raised *before* anything is recorded, so the caller can stop before spending).

The metrics are ``tokens`` (tokens in + out), ``money``, ``actions``, ``wall_s`` and ``gpu_s``. A hard
limit is crossed when ``spent + requested > hard`` (reaching it exactly is allowed, with a relative tolerance of
1e-9 for floating-point sums); a soft limit is
crossed when ``spent + requested > soft``. The budget check and the insert run in one
``BEGIN IMMEDIATE`` transaction, so concurrent processes cannot overspend a hard limit together.
Running totals per run and per workflow live in ``ledger_totals``, updated in the same transaction, so a
check costs one indexed lookup however many events a run has.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsimon.errors import BudgetExceeded, ConfigError
from parsimon.governance.scope import current_scope
from parsimon.governance.store import Handle, resolve_path

__all__ = ["METRICS", "BudgetWarning", "Ledger", "LedgerEvent", "get_ledger"]

METRICS = ("tokens", "money", "actions", "wall_s", "gpu_s")
_GROUP_BY = ("run", "workflow", "component")
_SCOPE_KINDS = ("run", "workflow")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, run TEXT, workflow TEXT,
    component TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
    money REAL NOT NULL, actions INTEGER NOT NULL, wall_s REAL NOT NULL, gpu_s REAL NOT NULL, meta TEXT
);
CREATE INDEX IF NOT EXISTS ledger_events_run ON ledger_events(run);
CREATE INDEX IF NOT EXISTS ledger_events_workflow ON ledger_events(workflow);
CREATE INDEX IF NOT EXISTS ledger_events_component ON ledger_events(component);
CREATE TABLE IF NOT EXISTS ledger_totals (
    kind TEXT NOT NULL, scope TEXT NOT NULL, tokens REAL NOT NULL DEFAULT 0, money REAL NOT NULL DEFAULT 0,
    actions REAL NOT NULL DEFAULT 0, wall_s REAL NOT NULL DEFAULT 0, gpu_s REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, scope)
);
CREATE TABLE IF NOT EXISTS ledger_budgets (
    kind TEXT NOT NULL, scope TEXT NOT NULL, metric TEXT NOT NULL, soft REAL, hard REAL,
    PRIMARY KEY (kind, scope, metric)
)
"""


class BudgetWarning(UserWarning):
    """A soft budget limit was crossed (emitted once per scope and metric per :class:`Ledger`)."""


@dataclass(frozen=True)
class LedgerEvent:
    """One recorded cost event."""

    id: int
    ts: float  # seconds since the epoch
    run: str | None
    workflow: str | None
    component: str
    tokens_in: int
    tokens_out: int
    money: float
    actions: int
    wall_s: float
    gpu_s: float
    meta: dict | None

    def as_dict(self) -> dict[str, Any]:
        """The event as a plain dict (JSON-ready)."""
        return dict(self.__dict__)


SoftLimitCallback = Callable[[str, str, str, float, float], Any]


# The largest amount one charge may record. Far above any real call (a trillion tokens, a trillion in
# money, 30,000 years of seconds), and small enough that sums over millions of events stay exact in
# SQLite's 64-bit integers and finite in its doubles.
MAX_AMOUNT = 10**12
# Limits are compared with this relative slack, so that reaching a hard limit exactly in several
# floating-point steps (0.1 + 0.1 + 0.1 against 0.3) is allowed, as documented.
_REL_TOL = 1e-9


def _amounts(tokens_in: int, tokens_out: int, money: float, actions: int, wall_s: float, gpu_s: float):
    values = {"tokens_in": tokens_in, "tokens_out": tokens_out, "money": money, "actions": actions,
              "wall_s": wall_s, "gpu_s": gpu_s}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"`{name}` must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"`{name}` must be finite, got {value!r}")
        if not 0 <= value <= MAX_AMOUNT:
            raise ConfigError(f"`{name}` must be between 0 and {MAX_AMOUNT:.0e} per charge, got {value!r}")
    for name in ("tokens_in", "tokens_out", "actions"):
        if int(values[name]) != values[name]:
            raise ConfigError(f"`{name}` must be a whole number, got {values[name]!r}")
    return {"tokens": tokens_in + tokens_out, "money": float(money), "actions": actions,
            "wall_s": float(wall_s), "gpu_s": float(gpu_s)}


def _check_scope_args(run: str | None, workflow: str | None) -> tuple[str, str]:
    if (run is None) == (workflow is None):
        raise ValueError(f"give exactly one of `run` and `workflow`, got run={run!r}, workflow={workflow!r}")
    return ("run", run) if run is not None else ("workflow", workflow)  # type: ignore[return-value]


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {sorted(METRICS)}, got {metric!r}")
    return metric


class Ledger:
    """Cost events and budgets in the governance SQLite store.

    Use :func:`get_ledger` to share one instance per file in a process.

    Args:
        path: The SQLite file (default ``$PARSIMON_HOME/governance.sqlite``).
        synchronous: ``"normal"`` (durable against a process crash) or ``"full"`` (also against power
            loss); see :mod:`parsimon.governance.store`.

    Example:
        >>> ledger = get_ledger()
        >>> ledger.set_budget(run="demo", metric="money", soft=0.5, hard=1.0)
        >>> _ = ledger.charge(component="llm", tokens_in=120, tokens_out=30, money=0.25, run="demo")
        >>> ledger.remaining(run="demo", metric="money")
        0.75
    """

    def __init__(self, path: str | os.PathLike | None = None, *, synchronous: str = "normal"):
        self.path: Path = resolve_path(path)
        self._db = Handle(self.path, synchronous=synchronous, schema=_SCHEMA)
        self._callbacks: list[SoftLimitCallback] = []
        self._warned: set[tuple[str, str, str]] = set()
        self._warn_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def set_budget(self, *, run: str | None = None, workflow: str | None = None, metric: str,
                   soft: float | None = None, hard: float | None = None) -> None:
        """Set (or replace) the soft and hard limits of one metric for a run or a workflow.

        Args:
            run: The run the budget applies to (give exactly one of ``run`` and ``workflow``).
            workflow: The workflow the budget applies to.
            metric: One of ``"tokens"``, ``"money"``, ``"actions"``, ``"wall_s"``, ``"gpu_s"``.
            soft: Crossing it warns once; None for no soft limit.
            hard: A charge that would cross it raises :class:`BudgetExceeded`; None for no hard limit.
        """
        kind, scope = _check_scope_args(run, workflow)
        _check_metric(metric)
        for name, value in (("soft", soft), ("hard", hard)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or not 0 <= value <= 1e18):
                raise ConfigError(f"`{name}` must be a finite number between 0 and 1e18, or None, got {value!r}")
        if soft is not None and hard is not None and soft > hard:
            raise ValueError(f"`soft` must be <= `hard`, got soft={soft!r}, hard={hard!r}")
        with self._db.transaction() as conn:
            if soft is None and hard is None:
                conn.execute("DELETE FROM ledger_budgets WHERE kind=? AND scope=? AND metric=?",
                             (kind, scope, metric))
            else:
                conn.execute("INSERT OR REPLACE INTO ledger_budgets VALUES (?, ?, ?, ?, ?)",
                             (kind, scope, metric, soft, hard))
        with self._warn_lock:
            self._warned.discard((kind, scope, metric))

    def budgets(self) -> list[dict[str, Any]]:
        """Every budget set, as dicts with ``kind``, ``scope``, ``metric``, ``soft``, ``hard``."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT kind, scope, metric, soft, hard FROM ledger_budgets "
                                "ORDER BY kind, scope, metric").fetchall()
        return [dict(zip(("kind", "scope", "metric", "soft", "hard"), r, strict=True)) for r in rows]

    def on_soft_limit(self, callback: SoftLimitCallback) -> None:
        """Register ``callback(kind, scope, metric, limit, spent)``, called when a soft limit is crossed."""
        if not callable(callback):
            raise ValueError(f"`callback` must be callable, got {callback!r}")
        self._callbacks.append(callback)

    def _spent(self, conn, kind: str, scope: str) -> dict[str, float]:
        row = conn.execute("SELECT tokens, money, actions, wall_s, gpu_s FROM ledger_totals "
                           "WHERE kind=? AND scope=?", (kind, scope)).fetchone()
        return dict(zip(METRICS, row or (0.0,) * len(METRICS), strict=True))

    def _check(self, conn, scopes: list[tuple[str, str]], amounts: dict[str, float]) -> list[tuple]:
        """Raise if a hard limit would be crossed; return the soft crossings as (kind, scope, metric, soft, new)."""
        soft_hits = []
        for kind, scope in scopes:
            budgets = conn.execute("SELECT metric, soft, hard FROM ledger_budgets WHERE kind=? AND scope=?",
                                   (kind, scope)).fetchall()
            if not budgets:
                continue
            spent = self._spent(conn, kind, scope)
            for metric, soft, hard in budgets:
                new = spent[metric] + amounts[metric]
                if hard is not None and new > hard + _REL_TOL * max(1.0, abs(hard)):
                    raise BudgetExceeded(
                        f"{kind} {scope!r}: {metric} hard limit {hard:g} would be crossed "
                        f"(spent {spent[metric]:g}, requested {amounts[metric]:g})"
                    )
                if soft is not None and new > soft + _REL_TOL * max(1.0, abs(soft)):
                    soft_hits.append((kind, scope, metric, soft, new))
        return soft_hits

    @staticmethod
    def _scopes(run: str | None, workflow: str | None) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        scope = current_scope()
        run = run if run is not None else scope.run
        workflow = workflow if workflow is not None else scope.workflow
        pairs = [(k, v) for k, v in (("run", run), ("workflow", workflow)) if v is not None]
        return run, workflow, pairs

    def precheck(self, *, component: str, tokens_in: int = 0, tokens_out: int = 0, money: float = 0.0,
                 actions: int = 0, wall_s: float = 0.0, gpu_s: float = 0.0, run: str | None = None,
                 workflow: str | None = None, meta: dict | None = None) -> None:
        """Raise :class:`BudgetExceeded` if charging these amounts would cross a hard limit; record nothing.

        Takes the arguments of :meth:`charge`. Soft limits are not reported here (only by ``charge``).
        """
        if not isinstance(component, str) or not component:
            raise ValueError(f"`component` must be a non-empty string, got {component!r}")
        amounts = _amounts(tokens_in, tokens_out, money, actions, wall_s, gpu_s)
        run, workflow, pairs = self._scopes(run, workflow)
        with self._db.read() as conn:
            self._check(conn, pairs, amounts)

    def charge(self, *, component: str, tokens_in: int = 0, tokens_out: int = 0, money: float = 0.0,
               actions: int = 0, wall_s: float = 0.0, gpu_s: float = 0.0, run: str | None = None,
               workflow: str | None = None, meta: dict | None = None) -> int:
        """Record one cost event after checking the budgets of its run and workflow.

        Args:
            component: What spent it, e.g. ``"llm"``, ``"browser"``, ``"cta.planner"``.
            tokens_in: Prompt tokens.
            tokens_out: Completion tokens.
            money: Cost in the user's currency.
            actions: Environment actions taken.
            wall_s: Wall-clock seconds.
            gpu_s: GPU seconds.
            run: The run (default: the current :func:`run_scope`'s).
            workflow: The workflow (default: the current :func:`run_scope`'s).
            meta: Free-form JSON-serialisable details (model name, request id, ...).

        Returns:
            The event's id.

        Raises:
            BudgetExceeded: A hard limit of the run or the workflow would be crossed; nothing is recorded.
        """
        if not isinstance(component, str) or not component:
            raise ValueError(f"`component` must be a non-empty string, got {component!r}")
        amounts = _amounts(tokens_in, tokens_out, money, actions, wall_s, gpu_s)
        meta_text = None
        if meta is not None:
            try:
                meta_text = json.dumps(meta, sort_keys=True, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"`meta` must be JSON-serialisable, got {meta!r}: {exc}") from exc
        run, workflow, pairs = self._scopes(run, workflow)
        with self._db.transaction() as conn:
            soft_hits = self._check(conn, pairs, amounts)
            cur = conn.execute(
                "INSERT INTO ledger_events (ts, run, workflow, component, tokens_in, tokens_out, money, "
                "actions, wall_s, gpu_s, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), run, workflow, component, int(tokens_in), int(tokens_out), float(money),
                 int(actions), float(wall_s), float(gpu_s), meta_text),
            )
            for kind, scope in pairs:
                conn.execute(
                    "INSERT INTO ledger_totals (kind, scope, tokens, money, actions, wall_s, gpu_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, scope) DO UPDATE SET "
                    "tokens=tokens+excluded.tokens, money=money+excluded.money, "
                    "actions=actions+excluded.actions, wall_s=wall_s+excluded.wall_s, "
                    "gpu_s=gpu_s+excluded.gpu_s",
                    (kind, scope, *(amounts[m] for m in METRICS)),
                )
            event_id = int(cur.lastrowid)
        for kind, scope, metric, soft, new in soft_hits:
            self._soft_limit(kind, scope, metric, soft, new)
        return event_id

    def _soft_limit(self, kind: str, scope: str, metric: str, soft: float, spent: float) -> None:
        with self._warn_lock:
            if (kind, scope, metric) in self._warned:
                return
            self._warned.add((kind, scope, metric))
        warnings.warn(
            f"{kind} {scope!r}: {metric} soft limit {soft:g} crossed (spent {spent:g})",
            BudgetWarning, stacklevel=3,
        )
        for callback in list(self._callbacks):
            callback(kind, scope, metric, soft, spent)

    def spent(self, *, run: str | None = None, workflow: str | None = None, metric: str) -> float:
        """Return what a run or a workflow has spent of one metric."""
        kind, scope = _check_scope_args(run, workflow)
        _check_metric(metric)
        with self._db.read() as conn:
            return float(self._spent(conn, kind, scope)[metric])

    def remaining(self, *, run: str | None = None, workflow: str | None = None, metric: str) -> float | None:
        """Return the hard limit minus what was spent (negative if a limit was lowered), None without one."""
        kind, scope = _check_scope_args(run, workflow)
        _check_metric(metric)
        with self._db.read() as conn:
            row = conn.execute("SELECT hard FROM ledger_budgets WHERE kind=? AND scope=? AND metric=?",
                               (kind, scope, metric)).fetchone()
            if row is None or row[0] is None:
                return None
            return float(row[0]) - float(self._spent(conn, kind, scope)[metric])

    def limits(self, *, run: str | None = None, workflow: str | None = None, metric: str) -> tuple:
        """Return ``(soft, hard)`` for one metric of a run or a workflow (None where unset)."""
        kind, scope = _check_scope_args(run, workflow)
        _check_metric(metric)
        with self._db.read() as conn:
            row = conn.execute("SELECT soft, hard FROM ledger_budgets WHERE kind=? AND scope=? AND metric=?",
                               (kind, scope, metric)).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    @staticmethod
    def _where(run, workflow, component=None) -> tuple[str, list]:
        clauses, params = [], []
        for col, value in (("run", run), ("workflow", workflow), ("component", component)):
            if value is not None:
                clauses.append(f"{col} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def totals(self, by: str = "component", *, run: str | None = None,
               workflow: str | None = None) -> list[dict[str, Any]]:
        """Sum every metric per run, workflow or component.

        Args:
            by: ``"run"``, ``"workflow"`` or ``"component"``.
            run: Only events of this run.
            workflow: Only events of this workflow.

        Returns:
            One dict per key, sorted by key: ``{by: key, "tokens_in", "tokens_out", "tokens", "money",
            "actions", "wall_s", "gpu_s", "events"}``.
        """
        if by not in _GROUP_BY:
            raise ValueError(f"`by` must be one of {sorted(_GROUP_BY)}, got {by!r}")
        where, params = self._where(run, workflow)
        sql = (f"SELECT {by}, SUM(tokens_in), SUM(tokens_out), SUM(money), SUM(actions), SUM(wall_s), "
               f"SUM(gpu_s), COUNT(*) FROM ledger_events{where} GROUP BY {by} ORDER BY {by}")
        with self._db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        out = []
        for key, t_in, t_out, money, actions, wall_s, gpu_s, n in rows:
            out.append({by: key, "tokens_in": int(t_in), "tokens_out": int(t_out), "tokens": int(t_in + t_out),
                        "money": float(money), "actions": int(actions), "wall_s": float(wall_s),
                        "gpu_s": float(gpu_s), "events": int(n)})
        return out

    def top_spenders(self, metric: str = "money", by: str = "component", n: int = 10) -> list[dict[str, Any]]:
        """Return the ``n`` keys of ``by`` that spent the most of ``metric`` (rows as in :meth:`totals`)."""
        _check_metric(metric)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"`n` must be a positive int, got {n!r}")
        rows = self.totals(by)
        rows.sort(key=lambda r: (-r[metric], str(r[by])))
        return rows[:n]

    def events(self, run: str | None = None, workflow: str | None = None, component: str | None = None,
               limit: int | None = None) -> list[LedgerEvent]:
        """Return recorded events in id order, optionally filtered; ``limit`` keeps the last ``limit``."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"`limit` must be a non-negative int or None, got {limit!r}")
        where, params = self._where(run, workflow, component)
        sql = f"SELECT * FROM ledger_events{where} ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM (SELECT * FROM ledger_events{where} ORDER BY id DESC LIMIT ?) ORDER BY id"
            params = [*params, limit]
        with self._db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [LedgerEvent(*row[:11], json.loads(row[11]) if row[11] is not None else None) for row in rows]

    def count(self) -> int:
        """Return the number of recorded events."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM ledger_events").fetchone()[0])

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        self._db.close()


_LEDGERS: dict[tuple[int, Path], Ledger] = {}
_LEDGERS_LOCK = threading.Lock()


def get_ledger(path: str | os.PathLike | None = None) -> Ledger:
    """Return this process's :class:`Ledger` for ``path`` (default ``$PARSIMON_HOME/governance.sqlite``).

    The default path is resolved at each call, so a changed ``$PARSIMON_HOME`` gives another ledger.
    """
    resolved = resolve_path(path)
    key = (os.getpid(), resolved)
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get(key)
        if ledger is None:
            ledger = _LEDGERS[key] = Ledger(resolved)
        return ledger
