"""SQLite connection helpers shared by the ledger and the proof-of-action log.

The governance store is one SQLite file (default ``$PARSIMON_HOME/governance.sqlite``) in WAL mode, so
readers never block the writer and several processes can write to it. Every write runs inside
``BEGIN IMMEDIATE``: the write lock is taken when the transaction starts, so two writers never both read
a stale state (the budget spent, the chain's last hash) and then commit on top of each other; a writer
that finds the lock held waits up to ``BUSY_TIMEOUT_S`` (SQLite's busy handler) before failing.

Durability follows ``PRAGMA synchronous``:

* ``"normal"`` (the default): in WAL mode a commit is written to the WAL before ``commit()`` returns,
  so it survives the crash (or ``SIGKILL``) of the process, but the WAL is only fsync'd at checkpoints,
  so a power loss or kernel crash can lose the last commits (never corrupt the file).
* ``"full"``: the WAL is fsync'd at every commit, so a committed record also survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from parsimon import paths
from parsimon.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_S", "SYNCHRONOUS", "Handle", "check_synchronous", "connect", "default_path", "resolve_path",
    "write_transaction",
]

BUSY_TIMEOUT_S = 60.0  # a writer waits this long for the lock before failing
SYNCHRONOUS = ("normal", "full")
_FILENAME = "governance.sqlite"


def default_path() -> Path:
    """Return ``$PARSIMON_HOME/governance.sqlite``, read at call time (tests change the variable)."""
    return paths.home() / _FILENAME


def resolve_path(path: str | os.PathLike | None) -> Path:
    """Return the absolute path of a store: ``path``, or :func:`default_path` when it is None."""
    if path is None:
        return default_path().resolve()
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.resolve()


def check_synchronous(synchronous: str) -> str:
    """Validate and normalise a durability setting."""
    value = str(synchronous).lower()
    if value not in SYNCHRONOUS:
        raise ValueError(f"`synchronous` must be one of {list(SYNCHRONOUS)}, got {synchronous!r}")
    return value


def connect(path: Path, *, synchronous: str = "normal") -> sqlite3.Connection:
    """Open ``path`` in WAL mode with a busy timeout, in autocommit mode (transactions are explicit).

    Args:
        path: The database file; created if missing.
        synchronous: ``"normal"`` or ``"full"`` (see the module docstring).

    Returns:
        A connection usable from any thread (callers serialise access with their own lock).
    """
    synchronous = check_synchronous(synchronous)
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    # Switching to WAL needs an exclusive lock, and SQLite may answer SQLITE_BUSY at once (without the
    # busy handler) while another process opens the same new file, so retry for a while.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch {path} to WAL mode (journal_mode={mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    return conn


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """Run the body inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


class Handle:
    """A connection that is reopened in a forked child (SQLite connections must not cross a fork)."""

    def __init__(self, path: Path, *, synchronous: str, schema: str):
        self.path, self.synchronous, self.schema = path, check_synchronous(synchronous), schema
        self.lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    @property
    def conn(self) -> sqlite3.Connection:
        """The process's connection, opened (and the schema created) on first use."""
        if self._conn is None or self._pid != os.getpid():
            if self._pid != os.getpid():
                # A lock held by another thread at fork time would never be released in the child.
                self.lock, self._open_lock = threading.Lock(), threading.Lock()
            with self._open_lock:
                if self._conn is not None and self._pid == os.getpid():
                    return self._conn
                try:
                    conn = connect(self.path, synchronous=self.synchronous)
                    with write_transaction(conn, threading.Lock()):
                        for statement in filter(None, (s.strip() for s in self.schema.split(";"))):
                            conn.execute(statement)
                except sqlite3.DatabaseError as exc:
                    raise StoreError(f"the governance store {self.path} cannot be opened: {exc}") from None
                self._conn, self._pid = conn, os.getpid()
        return self._conn

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction on this process's connection."""
        return write_transaction(self.conn, self.lock)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, held exclusively by this thread for the duration of a query."""
        conn = self.conn
        with self.lock:
            yield conn

    def close(self) -> None:
        """Close the connection (a later use reopens it)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
