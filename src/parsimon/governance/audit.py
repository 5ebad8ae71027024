"""The proof-of-action log: an append-only, hash-chained record of what an agent did.

Two storage forms share one API and one canonical encoding (see :mod:`parsimon.governance.chain`):

* :class:`AuditLog` (the default, a table in ``$PARSIMON_HOME/governance.sqlite``). Each append is one
  ``BEGIN IMMEDIATE`` transaction that reads the head (record count and last hash), inserts the record
  and writes the new head. SQLite commits atomically, so an append killed at any moment leaves either
  the whole record and its head or neither: a torn record cannot exist, and concurrent writers from
  several processes are serialised by the write lock, so no two records get the same ``seq``.
* :class:`JsonlAuditLog` (any path ending in ``.jsonl``, also what :meth:`AuditLog.export_jsonl`
  writes): one line per record, appended with one ``write`` under an exclusive ``flock``, plus a
  fixed-size anchor file ``<log>.head`` rewritten in place after each line. A crash can leave a torn
  final line; the verifier reports it and checks every complete record before it; the next writer
  moves the fragment to ``<log>.torn`` before appending.

What :meth:`verify` detects: an edited field (the record's hash no longer matches), a deleted, inserted
or reordered record (a ``seq`` gap or repeat, or a ``prev`` hash that does not link), a truncation at a
record boundary (fewer records than the stored anchor says), and a torn final line. What it cannot
detect on its own: someone who rewrites the chain *and* its anchor consistently (for example drops the
last records and rewrites the head to match, or rebuilds every hash). Against that, store
:meth:`head` somewhere the writer cannot change (another machine, a ticket, a signed message) and pass
it back as ``verify(expected_head=...)``: the log must still contain that exact prefix.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

from parsimon.errors import AuditError
from parsimon.governance.chain import (
    GENESIS,
    AuditRecord,
    Head,
    VerifyReport,
    body_text,
    check_line,
    check_text,
    encode_fields,
    iter_jsonl,
    line_for,
    parse_line,
    utc_now,
    verify_chain,
)
from parsimon.governance.scope import current_scope
from parsimon.governance.store import Handle, check_synchronous, resolve_path

__all__ = ["AuditLog", "JsonlAuditLog", "get_audit_log", "verify_jsonl"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, run TEXT, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT, args_json TEXT, before_json TEXT, after_json TEXT, outcome TEXT,
    prev TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL, hash TEXT NOT NULL)
"""
_COLUMNS = "seq, ts, run, actor, action, target, args_json, before_json, after_json, outcome, prev, hash"
_HEAD_SIZE = 127  # the anchor file is one line of this many bytes plus a newline, rewritten in place


def _prepare(actor, action, target, args, before, after, outcome, run):
    check_text("actor", actor, required=True)
    check_text("action", action, required=True)
    check_text("target", target, required=False)
    check_text("outcome", outcome, required=False)
    check_text("run", run, required=False)
    if run is None:
        run = current_scope().run
    return (run, *encode_fields(args, before, after))


def _loads_field(text):
    """A stored JSON field as an object; an unparsable one (a tampered record) is kept as its raw text."""
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return {"__invalid_json__": raw}
    return value


def _text(value):
    """A stored text column as text (a tampered row may hold a BLOB or a number)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _record(seq, ts, run, actor, action, target, args_json, before_json, after_json, outcome, prev, digest):
    return AuditRecord(seq, _text(ts), _text(run), _text(actor), _text(action), _text(target),
                       *(_loads_field(t) for t in (args_json, before_json, after_json)),
                       _text(outcome), _text(prev), _text(digest))


def _row_check(seq, ts, run, actor, action, target, a, b, c, outcome, prev, digest):
    """``(seq, prev, hash, hash_ok)`` of a stored row, or an AuditError for a row of the wrong types."""
    texts = (ts, run, actor, action, target, a, b, c, outcome, prev, digest)
    if not isinstance(seq, int) or not all(v is None or isinstance(v, str) for v in texts):
        return AuditError(f"record {seq!r} holds a value of the wrong type (a BLOB or number where text belongs)")
    body = body_text(seq, ts, run, actor, action, target, a, b, c, outcome, prev)
    return seq, prev, digest, hashlib.sha256(body.encode("utf-8")).hexdigest() == digest


def _sqlite_tables(path: Path) -> set[str] | None:
    """The table names of an existing SQLite file, read-only (None when the file does not exist)."""
    import sqlite3

    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        try:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path} is not a readable SQLite database ({exc})") from None


class AuditLog:
    """The proof-of-action log in the governance SQLite store (see the module docstring).

    Args:
        path: The SQLite file (default ``$PARSIMON_HOME/governance.sqlite``).
        synchronous: ``"normal"`` (a committed record survives a process crash) or ``"full"`` (also a
            power loss).

    Example:
        >>> log = get_audit_log()
        >>> rec = log.append(actor="agent", action="click", target="#submit", outcome="ok",
        ...                  before={"screenshot_sha256": "ab" * 32})
        >>> log.verify().ok, log.head().n
        (True, 1)
    """

    def __init__(self, path: str | os.PathLike | None = None, *, synchronous: str = "normal"):
        self.path: Path = resolve_path(path)
        self._db = Handle(self.path, synchronous=synchronous, schema=_SCHEMA)

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def append(self, *, actor: str, action: str, target: str | None = None, args: dict | None = None,
               before: dict | None = None, after: dict | None = None, outcome: str | None = None,
               run: str | None = None) -> AuditRecord:
        """Append one record, chained to the previous one, in one durable transaction.

        Args:
            actor: Who acted (``"agent"``, ``"user"``, ``"escalation"``...).
            action: What was done (``"click"``, ``"submit"``, ``"decide"``...).
            target: What it was done to (a selector, a URL, a file).
            args: The action's arguments (a JSON object).
            before: Evidence before the action, e.g. ``{"screenshot_sha256": ...}``.
            after: Evidence after the action.
            outcome: The result (``"ok"``, ``"error: ..."``).
            run: The run (default: the current :func:`run_scope`'s).

        Returns:
            The stored :class:`AuditRecord`.
        """
        run, args_json, before_json, after_json = _prepare(actor, action, target, args, before, after,
                                                           outcome, run)
        ts = utc_now()
        with self._db.transaction() as conn:
            row = conn.execute("SELECT n, hash FROM audit_head WHERE id = 0").fetchone()
            if row is None:
                if conn.execute("SELECT 1 FROM audit_records LIMIT 1").fetchone() is not None:
                    raise AuditError(f"{self.path}: the audit head is missing but records exist; "
                                     "refusing to append to a tampered log (run `parsimon audit verify`)")
                row = (0, GENESIS)
            seq, prev = int(row[0]), row[1]
            body = body_text(seq, ts, run, actor, action, target, args_json, before_json, after_json,
                             outcome, prev)
            digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
            conn.execute(f"INSERT INTO audit_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (seq, ts, run, actor, action, target, args_json, before_json, after_json, outcome,
                          prev, digest))
            conn.execute("INSERT OR REPLACE INTO audit_head (id, n, hash) VALUES (0, ?, ?)", (seq + 1, digest))
        return AuditRecord(seq, ts, run, actor, action, target, args, before, after, outcome, prev, digest)

    def head(self) -> Head:
        """Return ``Head(n, last_hash)``; keep it elsewhere and pass it to ``verify(expected_head=...)``."""
        with self._db.read() as conn:
            row = conn.execute("SELECT n, hash FROM audit_head WHERE id = 0").fetchone()
        return Head(0, GENESIS) if row is None else Head(int(row[0]), row[1])

    def __len__(self) -> int:
        return self.head().n

    def records(self, *, run: str | None = None, last: int | None = None) -> list[AuditRecord]:
        """Return the records in ``seq`` order, optionally only one run's, or only the ``last`` ones."""
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise ValueError(f"`last` must be a non-negative int or None, got {last!r}")
        where, params = ("WHERE run = ?", [run]) if run is not None else ("", [])
        sql = f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY seq"
        if last is not None:
            sql = f"SELECT * FROM (SELECT {_COLUMNS} FROM audit_records {where} ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            params.append(last)
        with self._db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_record(*r) for r in rows]

    def verify(self, expected_head: Head | tuple | None = None) -> VerifyReport:
        """Recompute the chain and compare it with the stored head (and ``expected_head`` if given).

        A store whose audit tables are missing (dropped, or never written) does not verify: the check
        opens the file read-only first, so it never recreates them.
        """
        tables = _sqlite_tables(self.path)
        if tables is None or not {"audit_records", "audit_head"} <= tables:
            where = "does not exist" if tables is None else "holds no audit tables (they were dropped, or " \
                                                             "nothing was ever logged there)"
            return VerifyReport(False, 0, 0, 0, f"the store {self.path} {where}: nothing can be verified")
        import sqlite3

        try:
            return self._verify(expected_head)
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{self.path}: the audit tables cannot be read ({exc})") from None

    def _verify(self, expected_head: Head | tuple | None) -> VerifyReport:
        with self._db.read() as conn:
            # One read transaction, so the records and the head come from the same snapshot.
            conn.execute("BEGIN")
            try:
                head_row = conn.execute("SELECT n, hash FROM audit_head WHERE id = 0").fetchone()
                total = int(conn.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0])
                cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq")

                def rows():
                    for row in cursor:
                        yield _row_check(*row)

                head = None if head_row is None else Head(int(head_row[0]), _text(head_row[1]))
                if head is None and conn.execute("SELECT 1 FROM audit_records LIMIT 1").fetchone():
                    n = conn.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0]
                    return VerifyReport(False, n, 0, None, "the stored head is missing although the log has "
                                        f"{n} records: it was deleted, so no record is anchored")
                report = verify_chain(rows(), head=head, head_exact=True, expected_head=expected_head,
                                      head_label="stored head", n_total=total)
            finally:
                conn.execute("COMMIT")
        return report

    def export_jsonl(self, path: str | os.PathLike) -> Head:
        """Write the log as a JSONL file plus its ``.head`` anchor (checkable with :func:`verify_jsonl`)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with self._db.read() as conn:
            conn.execute("BEGIN")
            try:
                head = conn.execute("SELECT n, hash FROM audit_head WHERE id = 0").fetchone()
                with open(tmp, "wb") as fh:
                    for row in conn.execute(f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq"):
                        fh.write(line_for(body_text(*row[:11]), row[11]))
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                conn.execute("COMMIT")
        os.replace(tmp, path)
        head = Head(0, GENESIS) if head is None else Head(int(head[0]), head[1])
        _write_head_file(_head_path(path), head, fsync=True)
        return head

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        self._db.close()


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _head_bytes(head: Head) -> bytes:
    text = f'{{"hash":"{head.hash}","n":{head.n}}}'.encode("ascii")
    return text.ljust(_HEAD_SIZE) + b"\n"


def _write_head_file(path: Path, head: Head, *, fsync: bool, fd: int | None = None) -> None:
    own = fd is None
    if own:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # One pwrite of a fixed-size line: a killed process leaves the old or the new anchor, never half.
        os.pwrite(fd, _head_bytes(head), 0)
        if fsync:
            os.fsync(fd)
    finally:
        if own:
            os.close(fd)


def _read_head_file(path: Path) -> Head | None:
    import json

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"{path}: the head anchor cannot be read ({exc.strerror or exc})") from None
    try:
        obj = json.loads(data)
        return Head(int(obj["n"]), str(obj["hash"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: the head anchor is unreadable ({exc})") from None


def _scan_jsonl(path: Path, expected_head=None, head: Head | None = None) -> VerifyReport:
    torn = False

    def rows(fh):
        nonlocal torn
        for line, complete in iter_jsonl(fh):
            if not complete:
                torn = True
                return
            try:
                yield check_line(line)
            except AuditError as exc:
                yield exc
                return

    with open(path, "rb") as fh:
        # The torn-tail flag is only known at the end of the file, so read the rows first.
        items = list(rows(fh))
    with open(path, "rb") as fh:
        total = sum(1 for _line, complete in iter_jsonl(fh) if complete)
    return verify_chain(items, head=head, head_exact=False, expected_head=expected_head, torn_tail=torn,
                        head_label="head file", n_total=total)


def verify_jsonl(path: str | os.PathLike, *, expected_head: Head | tuple | None = None,
                 head_path: str | os.PathLike | None = None) -> VerifyReport:
    """Verify a JSONL proof-of-action log (written by :class:`JsonlAuditLog` or ``export_jsonl``).

    Args:
        path: The ``.jsonl`` file.
        expected_head: An anchor ``(n, last_hash)`` kept elsewhere; the log must contain that prefix.
        head_path: The anchor file written beside the log (default ``<path>.head``; used if it exists).
    """
    path = Path(path)
    if not path.is_file():
        raise AuditError(f"no audit log at {path}")
    try:
        head = _read_head_file(Path(head_path) if head_path is not None else _head_path(path))
    except AuditError as exc:
        return VerifyReport(False, 0, 0, 0, f"{exc}: the anchor was damaged or replaced")
    return _scan_jsonl(path, expected_head, head)


class JsonlAuditLog:
    """The proof-of-action log as an append-only JSONL file (see the module docstring).

    Args:
        path: The ``.jsonl`` file (created if missing) ; the anchor is ``<path>.head``.
        synchronous: ``"normal"``: each line is handed to the kernel in one ``write`` before ``append``
            returns (survives a process crash); ``"full"``: the file and the anchor are also fsync'd.
    """

    def __init__(self, path: str | os.PathLike, *, synchronous: str = "normal"):
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head_path = _head_path(self.path)
        self.synchronous = check_synchronous(synchronous)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._head_fd: int | None = None
        self._pid = -1
        self._state: tuple[int, int, Head] | None = None  # (file size, inode, head) after our last write

    def __repr__(self) -> str:
        return f"JsonlAuditLog({str(self.path)!r})"

    def _fds(self) -> tuple[int, int]:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self._head_fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid, self._state = os.getpid(), None
        return self._fd, self._head_fd  # type: ignore[return-value]

    def _tail(self, fd: int, size: int) -> Head:
        """Recover the head from the file's last complete line; move a torn fragment aside."""
        if size == 0:
            return Head(0, GENESIS)
        chunk, pos, data = 1 << 16, size, b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            data = os.pread(fd, step, pos) + data
            if data.count(b"\n") >= 2 or (pos == 0):
                break
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            fragment = data[cut:]
            with open(self.path.with_name(self.path.name + ".torn"), "ab") as fh:
                fh.write(fragment + b"\n")
            size = pos + cut
            os.ftruncate(fd, size)
            data = data[:cut]
            if size == 0:
                return Head(0, GENESIS)
        last = data[:-1].rsplit(b"\n", 1)[-1]
        record, ok = parse_line(last)
        if not ok:
            raise AuditError(f"{self.path}: the last record's hash does not match; refusing to append "
                             "to a tampered log (run `parsimon audit verify --jsonl`)")
        return Head(record.seq + 1, record.hash)

    def append(self, *, actor: str, action: str, target: str | None = None, args: dict | None = None,
               before: dict | None = None, after: dict | None = None, outcome: str | None = None,
               run: str | None = None) -> AuditRecord:
        """Append one record (same arguments as :meth:`AuditLog.append`)."""
        run, args_json, before_json, after_json = _prepare(actor, action, target, args, before, after,
                                                           outcome, run)
        with self._lock:
            fd, head_fd = self._fds()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.fstat(fd)
                if self._state is None or self._state[:2] != (st.st_size, st.st_ino):
                    head = self._tail(fd, st.st_size)
                    anchor = _read_head_file(self.head_path) if os.fstat(head_fd).st_size else None
                    if anchor is not None and (anchor.n > head.n or (anchor.n == head.n and anchor != head)):
                        raise AuditError(f"{self.path}: the file ends at record {head.n} but its head "
                                         f"anchor says {anchor.n}; refusing to append to a truncated or "
                                         "rewritten log (run `parsimon audit verify --jsonl`)")
                else:
                    head = self._state[2]
                ts = utc_now()
                body = body_text(head.n, ts, run, actor, action, target, args_json, before_json, after_json,
                                 outcome, head.hash)
                digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
                line = line_for(body, digest)
                written = os.write(fd, line)
                if written != len(line):
                    raise AuditError(f"{self.path}: short write ({written} of {len(line)} bytes)")
                if self.synchronous == "full":
                    os.fsync(fd)
                new_head = Head(head.n + 1, digest)
                _write_head_file(self.head_path, new_head, fsync=self.synchronous == "full", fd=head_fd)
                self._state = (os.fstat(fd).st_size, st.st_ino, new_head)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return AuditRecord(head.n, ts, run, actor, action, target, args, before, after, outcome, head.hash,
                           digest)

    def head(self) -> Head:
        """Return ``Head(n, last_hash)`` of the complete records on disk."""
        n, digest = 0, GENESIS
        if self.path.exists():
            with open(self.path, "rb") as fh:
                for line, complete in iter_jsonl(fh):
                    if complete:
                        n, digest = n + 1, check_line(line)[2]
        return Head(n, digest)

    def records(self, *, run: str | None = None, last: int | None = None) -> list[AuditRecord]:
        """Return the complete records in file order (a torn final line is skipped)."""
        if not self.path.exists():
            return []
        out = []
        with open(self.path, "rb") as fh:
            for line, complete in iter_jsonl(fh):
                if complete:
                    record = parse_line(line)[0]
                    if run is None or record.run == run:
                        out.append(record)
        return out if last is None else out[len(out) - min(last, len(out)):]

    def verify(self, expected_head: Head | tuple | None = None) -> VerifyReport:
        """Verify the file against its chain, its ``.head`` anchor and ``expected_head`` if given."""
        if not self.path.exists():
            return verify_chain([], head=_read_head_file(self.head_path), head_exact=False,
                                expected_head=expected_head, head_label="head file")
        return verify_jsonl(self.path, expected_head=expected_head)

    def export_jsonl(self, path: str | os.PathLike) -> Head:
        """Copy the complete records and a fresh anchor to ``path`` and ``<path>.head``."""
        records = self.records()
        path = Path(path)
        with open(path, "wb") as fh:
            for r in records:
                fh.write(line_for(body_text(r.seq, r.ts, r.run, r.actor, r.action, r.target,
                                            *encode_fields(r.args, r.before, r.after), r.outcome, r.prev),
                                  r.hash))
        head = Head(len(records), records[-1].hash if records else GENESIS)
        _write_head_file(_head_path(path), head, fsync=True)
        return head

    def close(self) -> None:
        """Close the file descriptors (they reopen on next use)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
            os.close(self._head_fd)  # type: ignore[arg-type]
        self._fd = self._head_fd = None


_LOGS: dict[tuple[int, Path], AuditLog | JsonlAuditLog] = {}
_LOGS_LOCK = threading.Lock()


def get_audit_log(path: str | os.PathLike | None = None) -> AuditLog | JsonlAuditLog:
    """Return this process's log for ``path``: a :class:`JsonlAuditLog` for a ``.jsonl`` path, else an
    :class:`AuditLog` in that SQLite file (default ``$PARSIMON_HOME/governance.sqlite``)."""
    if path is not None and str(path).endswith(".jsonl"):
        resolved = Path(path).expanduser().resolve()
        factory = JsonlAuditLog
    else:
        resolved = resolve_path(path)
        factory = AuditLog
    key = (os.getpid(), resolved)
    with _LOGS_LOCK:
        log = _LOGS.get(key)
        if log is None:
            log = _LOGS[key] = factory(resolved)
        return log
