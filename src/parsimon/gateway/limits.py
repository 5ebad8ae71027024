"""Rate limits (token buckets per key, per run and global) and the kill switch.

The kill switch is a table in the governance store, so ``parsimon gateway kill`` in another process stops
new calls at once: the gateway reads it (one indexed query) before every call. Calls already running in a
killed scope are cancelled by the gateway's watcher (within its poll interval) or at once when the kill
comes through the gateway's own admin API.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from parsimon.governance.store import Handle, resolve_path

__all__ = ["KILL_SCOPES", "Kill", "KillSwitch", "RateLimiter", "TokenBucket"]

KILL_SCOPES = ("global", "key", "run")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_kills (
    kind TEXT NOT NULL, scope TEXT NOT NULL, reason TEXT, by TEXT, ts REAL NOT NULL, PRIMARY KEY (kind, scope)
)
"""


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` spends one if it can."""

    def __init__(self, rate: float, burst: float | None = None, *, clock=time.monotonic):
        if not rate > 0:
            raise ValueError(f"`rate` must be > 0, got {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError(f"`burst` must be >= 1, got {burst!r}")
        self._clock = clock
        self._tokens, self._t = self.burst, clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """Buckets per key (each key's own rate), per run and one global bucket."""

    def __init__(self, *, global_per_s: float | None = None, global_burst: float | None = None,
                 run_per_s: float | None = None, run_burst: float | None = None, clock=time.monotonic):
        self._clock = clock
        self._global = TokenBucket(global_per_s, global_burst, clock=clock) if global_per_s else None
        self._run_rate, self._run_burst = run_per_s, run_burst
        self._keys: dict[str, TokenBucket] = {}
        self._runs: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, *, key: str | None, key_rate: float | None, key_burst: float | None,
              run: str | None) -> tuple[str, float] | None:
        """None when the call may go, else ``(scope, retry_after_s)`` of the first exhausted bucket."""
        buckets = []
        with self._lock:
            if key is not None and key_rate:
                b = self._keys.get(key)
                if b is None:
                    b = self._keys[key] = TokenBucket(key_rate, key_burst, clock=self._clock)
                buckets.append(("key", b))
            if run is not None and self._run_rate:
                b = self._runs.get(run)
                if b is None:
                    b = self._runs[run] = TokenBucket(self._run_rate, self._run_burst, clock=self._clock)
                buckets.append(("run", b))
        if self._global is not None:
            buckets.append(("global", self._global))
        for scope, bucket in buckets:
            wait = bucket.take()
            if wait > 0:
                return scope, wait
        return None


@dataclass(frozen=True)
class Kill:
    """One engaged kill switch."""

    kind: str  # global | key | run
    scope: str  # "*" for global
    reason: str | None
    by: str | None
    ts: float


class KillSwitch:
    """Kill switches in the governance store (see the module docstring)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = resolve_path(path)
        self._db = Handle(self.path, synchronous="normal", schema=_SCHEMA)

    def engage(self, kind: str, scope: str | None = None, *, reason: str | None = None, by: str = "cli") -> Kill:
        """Stop new calls of a key, a run, or every call (``kind="global"``)."""
        if kind not in KILL_SCOPES:
            raise ValueError(f"`kind` must be one of {list(KILL_SCOPES)}, got {kind!r}")
        if kind == "global":
            scope = "*"
        elif not scope:
            raise ValueError(f"a {kind} kill switch needs the {kind}'s name")
        kill = Kill(kind, scope, reason, by, time.time())
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO gateway_kills VALUES (?, ?, ?, ?, ?)",
                         (kind, scope, reason, by, kill.ts))
        return kill

    def release(self, kind: str, scope: str | None = None) -> bool:
        """Lift a kill switch; True if it was engaged."""
        if kind not in KILL_SCOPES:
            raise ValueError(f"`kind` must be one of {list(KILL_SCOPES)}, got {kind!r}")
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM gateway_kills WHERE kind=? AND scope=?",
                                (kind, "*" if kind == "global" else scope)).rowcount > 0

    def active(self) -> list[Kill]:
        """Every engaged kill switch."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT kind, scope, reason, by, ts FROM gateway_kills ORDER BY ts").fetchall()
        return [Kill(*r) for r in rows]

    def blocking(self, *, key: str | None, run: str | None) -> Kill | None:
        """The kill switch that stops a call of ``key`` in ``run``, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT kind, scope, reason, by, ts FROM gateway_kills WHERE kind='global' "
                "OR (kind='key' AND scope=?) OR (kind='run' AND scope=?) LIMIT 1", (key, run)).fetchone()
        return None if row is None else Kill(*row)
