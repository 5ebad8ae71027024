"""The hash chain of the proof-of-action log: canonical encoding, records, and the verifier.

Canonical encoding of a record (the bytes that are hashed). The record *body* is the JSON object::

    {"action", "actor", "after", "args", "before", "outcome", "prev", "run", "seq", "target", "ts"}

written with keys sorted, no whitespace (separators ``,`` and ``:``), non-ASCII characters kept as
themselves (``ensure_ascii=False``), no NaN or infinity, and encoded as UTF-8: exactly
``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")``, nested
objects (``args``, ``before``, ``after``) included. ``seq`` counts from 0; ``ts`` is the UTC time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``; ``prev`` is the hex sha256 of the previous record's body (64 zeros for
record 0). A record's hash is ``sha256(body)``, in hex, so each record commits to every record before it.

In a JSONL log each line is ``{"hash":"<64 hex>","record":<body>}`` followed by ``\\n`` (itself canonical
JSON: its two keys are sorted). The verifier slices the body bytes out of the line (the prefix has a
fixed width) and hashes them as they are, so any change of a byte of the body changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from parsimon.errors import AuditError

__all__ = [
    "GENESIS", "AuditRecord", "Head", "VerifyReport", "body_text", "canonical_json", "check_line", "check_text",
    "encode_fields", "iter_jsonl", "line_for", "parse_line", "sha256_hex", "utc_now", "verify_chain",
]

GENESIS = "0" * 64
_encode_str = json.encoder.encode_basestring  # the escaping json.dumps uses with ensure_ascii=False
_LINE_PREFIX = b'{"hash":"'
_LINE_MID = b'","record":'
_BODY_START = len(_LINE_PREFIX) + 64 + len(_LINE_MID)
_BODY_KEYS = frozenset(("action", "actor", "after", "args", "before", "outcome", "prev", "run", "seq",
                        "target", "ts"))


class Head(NamedTuple):
    """A commitment to a log prefix: the number of records and the hash of the last one."""

    n: int
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`AuditLog.verify` found.

    ``ok`` is True when every complete record is intact and no anchor reports missing records.
    ``first_bad`` is the 0-based index (= ``seq``) of the first record that fails, or of the first
    missing record after a truncation. A torn tail (a final line cut short by a crash) is reported by
    ``torn_tail`` and does not by itself make the log bad.
    """

    ok: bool
    n_records: int  # complete records found
    n_valid: int  # records verified before the first bad one
    first_bad: int | None
    reason: str
    torn_tail: bool = False


@dataclass(frozen=True)
class AuditRecord:
    """One proof-of-action record (``args``, ``before`` and ``after`` are JSON objects or None)."""

    seq: int
    ts: str
    run: str | None
    actor: str
    action: str
    target: str | None
    args: dict | None
    before: dict | None
    after: dict | None
    outcome: str | None
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed body as a dict."""
        return {k: getattr(self, k) for k in sorted(_BODY_KEYS)}

    def as_dict(self) -> dict[str, Any]:
        """The body plus its hash."""
        return {**self.body(), "hash": self.hash}


def utc_now() -> str:
    """The current UTC time in the log's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any, name: str = "value") -> str:
    """Canonical JSON text of ``value``; ValueError naming ``name`` when it is not JSON-serialisable."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"`{name}` must be JSON-serialisable (no NaN, valid UTF-8), got {value!r}: {exc}") from exc
    return text


def _s(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def body_text(seq: int, ts: str, run: str | None, actor: str, action: str, target: str | None,
              args_json: str | None, before_json: str | None, after_json: str | None,
              outcome: str | None, prev: str) -> str:
    """The canonical body; the ``*_json`` arguments are already canonical JSON texts (or None)."""
    return (
        f'{{"action":{_s(action)},"actor":{_s(actor)},"after":{after_json or "null"},'
        f'"args":{args_json or "null"},"before":{before_json or "null"},"outcome":{_s(outcome)},'
        f'"prev":{_s(prev)},"run":{_s(run)},"seq":{int(seq)},"target":{_s(target)},"ts":{_s(ts)}}}'
    )


def sha256_hex(text: str) -> str:
    """Hex sha256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def line_for(body: str, digest: str) -> bytes:
    """The JSONL line (with its newline) holding a body and its hash."""
    return b"".join((_LINE_PREFIX, digest.encode("ascii"), _LINE_MID, body.encode("utf-8"), b"}\n"))


def parse_line(line: bytes) -> tuple[AuditRecord, bool]:
    """Parse one JSONL line (without its newline); return the record and whether its hash matches.

    Raises:
        AuditError: The line is not a record line.
    """
    if not line.startswith(_LINE_PREFIX) or line[_BODY_START - len(_LINE_MID):_BODY_START] != _LINE_MID \
            or not line.endswith(b"}"):
        raise AuditError("not a record line")
    digest = line[len(_LINE_PREFIX):len(_LINE_PREFIX) + 64]
    body = line[_BODY_START:-1]
    try:
        obj = json.loads(body)
        digest_text = digest.decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditError(f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict) or set(obj) != _BODY_KEYS:
        raise AuditError("record body does not have the expected keys")
    record = AuditRecord(**obj, hash=digest_text)
    return record, hashlib.sha256(body).hexdigest() == digest_text


def check_line(line: bytes) -> tuple[int, str, str, bool]:
    """The verifier's fast path over one JSONL line: ``(seq, prev, hash, hash_ok)`` without a full parse.

    In a canonical body the top-level ``prev`` and ``seq`` come after every nested object, and string
    values cannot hold an unescaped quote, so the *last* ``,"prev":"`` and ``,"seq":`` are the top-level
    ones. Whatever bytes a tamperer writes, the hash commits to exactly the bytes these values are read
    from, so the chain argument holds for this extraction.

    Raises:
        AuditError: The line is not a record line.
    """
    if not line.startswith(_LINE_PREFIX) or line[_BODY_START - len(_LINE_MID):_BODY_START] != _LINE_MID \
            or not line.endswith(b"}"):
        raise AuditError("not a record line")
    body = line[_BODY_START:-1]
    i = body.rfind(b',"prev":"')
    j = body.rfind(b',"seq":', i + 1)
    k = body.find(b",", j + 7)
    if i < 0 or j < 0 or k < 0 or body[i + 73:i + 74] != b'"':
        raise AuditError("record body does not have a prev hash and a seq")
    try:
        seq = int(body[j + 7:k])
        digest = line[len(_LINE_PREFIX):len(_LINE_PREFIX) + 64].decode("ascii")
        prev = body[i + 9:i + 73].decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuditError(f"malformed seq or hash: {exc}") from exc
    return seq, prev, digest, hashlib.sha256(body).hexdigest() == digest


Row = tuple  # (seq, prev, hash, recomputed_hash_matches) or an AuditError for an unreadable record


def verify_chain(rows: Iterable[Row | Exception], *, head: Head | None, head_exact: bool,
                 expected_head: Head | tuple | None = None, torn_tail: bool = False,
                 head_label: str = "head", n_total: int | None = None) -> VerifyReport:
    """Check a sequence of records against the chain rules and the anchors.

    Args:
        rows: ``(seq, prev, hash, hash_ok)`` per record in storage order, or an exception for a record
            that could not be read.
        head: The log's own stored anchor, or None when it has none.
        head_exact: True when the anchor is written with every record (SQLite: same transaction), so
            records beyond it are an error; False when it may lag the records (a JSONL writer can stop
            between appending a line and updating the anchor).
        expected_head: An anchor kept elsewhere by the user, ``(n, last_hash)``: the log must still
            contain that prefix.
        torn_tail: Whether the storage ended with an incomplete record (reported, not an error).
        head_label: How the stored anchor is named in messages.
        n_total: How many records the storage holds (for messages; default: those read).
    """
    tail_note = "; the final line is torn (an incomplete append, ignored)" if torn_tail else ""
    prev_hash, i = GENESIS, 0
    anchors: dict[int, str] = {}
    want = {}
    if head is not None and head.n > 0:
        want[head.n - 1] = head.hash
    if expected_head is not None:
        expected_head = normalise_head(expected_head)
        if expected_head.n > 0:
            want.setdefault(expected_head.n - 1, expected_head.hash)

    def bad(index: int, reason: str, n_records: int) -> VerifyReport:
        total = n_total if n_total is not None and n_total >= n_records else n_records
        return VerifyReport(False, total, index, index, reason + tail_note, torn_tail)

    for row in rows:
        if isinstance(row, Exception):
            return bad(i, f"record {i} is unreadable: {row}", i + 1)
        seq, prev, digest, hash_ok = row
        if seq != i:
            what = "missing or out of order" if seq > i else "duplicated or out of order"
            return bad(i, f"record {i} has seq {seq} (records {what})", i + 1)
        if not hash_ok:
            return bad(i, f"record {i} was modified: its hash does not match its content", i + 1)
        if prev != prev_hash:
            return bad(i, f"record {i} does not follow record {i - 1}: its prev hash differs "
                          f"(a record was inserted, deleted or reordered)", i + 1)
        if i in want:
            anchors[i] = digest
        prev_hash = digest
        i += 1
    n = i
    for label, anchor in ((head_label, head), ("expected head", expected_head)):
        if anchor is None:
            continue
        if n < anchor.n:
            return VerifyReport(False, n, n, n, f"the log ends after {n} records but the {label} says "
                                f"{anchor.n}: it was truncated{tail_note}", torn_tail)
        if anchor.n > 0 and anchors.get(anchor.n - 1) != anchor.hash:
            return VerifyReport(False, n, anchor.n - 1, anchor.n - 1, f"record {anchor.n - 1} does not "
                                f"match the {label}'s hash: the log was rewritten{tail_note}", torn_tail)
        if label == head_label and head_exact and n > anchor.n:
            return VerifyReport(False, n, anchor.n, anchor.n, f"records from {anchor.n} on are not "
                                f"covered by the {label} ({anchor.n} records): they were added "
                                f"behind the writer's back{tail_note}", torn_tail)
    notes = []
    if head is None:
        notes.append(f"no {head_label} anchor was found, so a truncation at a record boundary "
                     "cannot be detected")
    elif not head_exact and n > head.n:
        notes.append(f"the {head_label} lags by {n - head.n} record(s) (a writer stopped between "
                     "appending and updating it)")
    reason = f"{n} records verified" + "".join(f"; {x}" for x in notes) + tail_note
    return VerifyReport(True, n, n, None, reason, torn_tail)


def normalise_head(head: Head | tuple) -> Head:
    """``(n, hash)`` as a :class:`Head` with the hash in lower-case hex; ValueError when malformed."""
    try:
        n, digest = int(head[0]), str(head[1]).strip().lower()
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"a head must be (n, sha256 hex), got {head!r}") from None
    if n < 0 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"a head must be (n >= 0, 64 hex digits), got {head!r}")
    return Head(n, digest)


def iter_jsonl(fh) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line_without_newline, complete)`` for each line of a binary file."""
    for line in fh:
        if line.endswith(b"\n"):
            yield line[:-1], True
        else:
            yield line, False


def encode_fields(args: dict | None, before: dict | None, after: dict | None) -> tuple:
    """Validate and encode the JSON-object fields of a record."""
    out = []
    for name, value in (("args", args), ("before", before), ("after", after)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"`{name}` must be a dict or None, got {type(value).__name__}")
        out.append(None if value is None else canonical_json(value, name))
    return tuple(out)


def check_text(name: str, value: Any, *, required: bool) -> None:
    """Validate a string field of a record."""
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"`{name}` must be a {'non-empty ' if required else ''}string"
                         f"{'' if required else ' or None'}, got {value!r}")
