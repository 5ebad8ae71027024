"""Proof you can hand to someone else: signed checkpoints and offline-verifiable receipts.

A *checkpoint* commits to a prefix of the proof-of-action log: the number of records ``n``, the hash of
record ``n - 1`` (the chain head) and the Merkle root of the records' hashes
(:mod:`parsimon.governance.merkle`), signed with Ed25519 (the ``cryptography`` package). Checkpoints are
signed at intervals and at the end of a run (the gateway does both; ``parsimon audit checkpoint`` signs
one by hand) and appended to ``<log>.checkpoints.jsonl`` beside the log.

A *receipt* (``parsimon audit export --receipt``) is one JSON file: the records (all, or one run's), the
signed checkpoints, and for a run's receipt an inclusion proof of each of its records against the last
checkpoint's Merkle root. :func:`verify_receipt` checks it offline with the public key alone:

* every checkpoint's signature, under the given key (a receipt signed by another key fails);
* every record's hash against its canonical body;
* a full receipt: the chain links, every checkpoint's head and Merkle root recomputed from the records,
  and that the log still holds at least as many records as the last checkpoint signed: a log whose tail
  was cut before the last signed checkpoint is detected even when its chain and head were rewritten to
  look intact;
* a run's receipt: each record's inclusion proof against the last checkpoint's root.

The signing key lives at ``$PARSIMON_AUDIT_KEY`` or ``$PARSIMON_HOME/keys/audit-ed25519.pem`` (created on
first use, mode 0600); ``parsimon audit public-key`` prints the public key to hand out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parsimon import paths
from parsimon.errors import AuditError, DependencyNotInstalled
from parsimon.governance.chain import GENESIS, body_text, canonical_json, encode_fields, utc_now
from parsimon.governance.merkle import MerkleFrontier, inclusion_proof, merkle_root, verify_inclusion

__all__ = [
    "Checkpoint", "CheckpointOnRunEnd", "Checkpointer", "ReceiptReport", "checkpoints", "default_key_path", "export_receipt", "key_id",
    "load_public_key", "load_signing_key", "public_key_pem", "sign_checkpoint", "verify_checkpoints",
    "verify_receipt",
]

_TYPE_CP = "parsimon.audit.checkpoint"
_TYPE_RECEIPT = "parsimon.audit.receipt"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - cryptography ships with the gateway extra
        raise DependencyNotInstalled("cryptography", "gateway", "signed audit checkpoints") from exc
    return serialization, ed25519


def default_key_path() -> Path:
    """``$PARSIMON_AUDIT_KEY``, else ``$PARSIMON_HOME/keys/audit-ed25519.pem`` (read at call time)."""
    env = os.environ.get("PARSIMON_AUDIT_KEY")
    return Path(env).expanduser() if env else paths.home() / "keys" / "audit-ed25519.pem"


def load_signing_key(path: str | os.PathLike | None = None, *, create: bool = True):
    """The Ed25519 private key at ``path`` (default :func:`default_key_path`), created if missing."""
    serialization, ed25519 = _crypto()
    p = Path(path) if path is not None else default_key_path()
    if not p.is_file():
        if not create:
            raise AuditError(f"no signing key at {p}")
        p.parent.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key
    key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise AuditError(f"{p} is not an Ed25519 private key")
    return key


def _raw_public(public_key) -> bytes:
    serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key) -> str:
    """The PEM text of a private or public key's public half."""
    serialization, ed25519 = _crypto()
    pub = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key) -> str:
    """The first 16 hex digits of the sha256 of the raw public key."""
    _, ed25519 = _crypto()
    pub = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return hashlib.sha256(_raw_public(pub)).hexdigest()[:16]


def load_public_key(source: str | os.PathLike | bytes):
    """An Ed25519 public key from a PEM file, PEM text/bytes, or 64 hex digits (a file or a string)."""
    serialization, ed25519 = _crypto()
    data: bytes
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        data = Path(source).read_bytes()
    else:
        data = str(source).encode()
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode()))
    except ValueError as exc:
        raise AuditError(f"not an Ed25519 public key (PEM or 64 hex digits): {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise AuditError("the public key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Checkpoint:
    """A signed commitment to the first ``n`` records of a log."""

    n: int
    head: str  # hash of record n - 1 (GENESIS for n = 0)
    root: str  # Merkle root (hex) of the hashes of records 0 .. n-1
    ts: str
    key_id: str
    reason: str
    signature: str  # hex Ed25519 signature of message()

    def message(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        body = {"head": self.head, "key_id": self.key_id, "n": self.n, "reason": self.reason, "root": self.root,
                "ts": self.ts, "type": _TYPE_CP, "v": 1}
        return canonical_json(body).encode("utf-8")

    def verify(self, public_key) -> bool:
        """Whether the signature is valid under ``public_key``."""
        from cryptography.exceptions import InvalidSignature

        try:
            public_key.verify(bytes.fromhex(self.signature), self.message())
            return True
        except (InvalidSignature, ValueError):
            return False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checkpoints_path(log) -> Path:
    return Path(str(log.path) + ".checkpoints.jsonl")


def _hashes(log) -> list[str]:
    from parsimon.governance.audit import AuditLog

    if isinstance(log, AuditLog):
        with log._db.read() as conn:
            return [r[0] for r in conn.execute("SELECT hash FROM audit_records ORDER BY seq")]
    return [r.hash for r in log.records()]


def checkpoints(log) -> list[Checkpoint]:
    """The signed checkpoints of ``log``, oldest first."""
    p = _checkpoints_path(log)
    if not p.is_file():
        return []
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            out.append(Checkpoint(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise AuditError(f"{p}:{i + 1}: unreadable checkpoint ({exc})") from None
    return out


def _append_checkpoint(log, cp: Checkpoint) -> None:
    p = _checkpoints_path(log)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (json.dumps(cp.as_dict(), sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _signed(key, n: int, head: str, root: bytes, reason: str) -> Checkpoint:
    cp = Checkpoint(n=n, head=head, root=root.hex(), ts=utc_now(), key_id=key_id(key), reason=str(reason),
                    signature="")
    return Checkpoint(**{**cp.as_dict(), "signature": key.sign(cp.message()).hex()})


def sign_checkpoint(log, key=None, *, reason: str = "") -> Checkpoint:
    """Verify ``log`` and sign a checkpoint over all its records; append it to the checkpoints file.

    Args:
        log: An :class:`~parsimon.governance.AuditLog` or :class:`~parsimon.governance.JsonlAuditLog`.
        key: The Ed25519 private key (default :func:`load_signing_key`).
        reason: Why it was signed ("interval", "run end: <id>", ...).

    Raises:
        AuditError: The log does not verify (a broken chain is never signed).
    """
    key = key if key is not None else load_signing_key()
    report = log.verify()
    # Records appended after the check are left for the next checkpoint: only the verified prefix is signed.
    hashes = _hashes(log)
    if not report.ok:
        raise AuditError(f"refusing to sign a checkpoint over a log that does not verify: {report.reason}")
    hashes = hashes[:report.n_records]
    cp = _signed(key, len(hashes), hashes[-1] if hashes else GENESIS,
                 merkle_root([bytes.fromhex(h) for h in hashes]), reason)
    _append_checkpoint(log, cp)
    return cp


class Checkpointer:
    """Signs checkpoints of a growing SQLite log in time proportional to the records added since the last one.

    On creation it verifies the whole log once and builds a :class:`~parsimon.governance.merkle.MerkleFrontier`
    over it; each :meth:`sign` then reads only the new records, checks each one's hash against its body and
    its link to the previous record, extends the frontier and signs. A server signing every few seconds
    thus never re-reads the whole log. Not thread-safe: one signer per log.

    Args:
        path: The governance SQLite file of the log.
        key: The Ed25519 private key (default :func:`load_signing_key`).
    """

    def __init__(self, path: str | os.PathLike | None = None, key=None):
        from parsimon.governance.audit import AuditLog

        # An own connection: reading the log here never waits on (or blocks) the appending connection.
        self.log = AuditLog(path)
        self.key = key if key is not None else load_signing_key()
        report = self.log.verify()
        if not report.ok:
            raise AuditError(f"the log does not verify, so no checkpoint is signed: {report.reason}")
        self._frontier = MerkleFrontier()
        self._head = GENESIS
        self._extend(limit=report.n_records)
        cps = [c for c in checkpoints(self.log) if c.key_id == key_id(self.key)]
        self.last = cps[-1] if cps else None

    @property
    def n(self) -> int:
        """Records covered so far."""
        return self._frontier.n

    def _extend(self, limit: int | None = None) -> int:
        from parsimon.governance.audit import _COLUMNS

        sql = f"SELECT {_COLUMNS} FROM audit_records WHERE seq >= ? ORDER BY seq"
        params: list = [self._frontier.n]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit - self._frontier.n)
        added = 0
        with self.log._db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        for row in rows:
            seq, prev, digest = row[0], row[10], row[11]
            if seq != self._frontier.n or prev != self._head or \
                    hashlib.sha256(body_text(*row[:11]).encode("utf-8")).hexdigest() != digest:
                raise AuditError(f"record {seq} does not verify against the chain signed so far; "
                                 "no checkpoint is signed (run `parsimon audit verify`)")
            self._frontier.append(bytes.fromhex(digest))
            self._head = digest
            added += 1
        return added

    def pending(self) -> int:
        """Records in the log not covered by the last signed checkpoint."""
        return self.log.head().n - (self.last.n if self.last else 0)

    def sign(self, reason: str = "") -> Checkpoint:
        """Cover the records appended since the last call and sign; return the checkpoint."""
        self._extend()
        cp = _signed(self.key, self._frontier.n, self._head, self._frontier.root(), reason)
        _append_checkpoint(self.log, cp)
        self.last = cp
        return cp

    def close(self) -> None:
        self.log.close()


class CheckpointOnRunEnd:
    """A feedback sink that signs a checkpoint when a run ends (its ``final`` or ``error`` event).

    Example::

        with start_run("games solve", cfg, sinks=[CheckpointOnRunEnd()]) as run:
            ...

    Args:
        log: The proof-of-action log (default: :func:`~parsimon.governance.get_audit_log`).
        key: The signing key (default :func:`load_signing_key`).
    """

    def __init__(self, log=None, key=None):
        self.log, self.key = log, key
        self.signed: list[Checkpoint] = []

    def emit(self, event) -> None:
        """Sign on the run's last event; a log that does not verify is reported as a warning, not raised
        (the run's own result must not be lost to it)."""
        if event.kind not in ("final", "error"):
            return
        import warnings

        from parsimon.governance.audit import get_audit_log
        from parsimon.governance.scope import current_scope

        try:
            cp = sign_checkpoint(self.log or get_audit_log(), self.key, reason=f"run end: {current_scope().run}")
        except AuditError as exc:
            warnings.warn(f"no checkpoint signed at the end of the run: {exc}", RuntimeWarning, stacklevel=2)
            return
        self.signed.append(cp)


@dataclass(frozen=True)
class ReceiptReport:
    """What :func:`verify_receipt` or :func:`verify_checkpoints` found."""

    ok: bool
    reason: str
    n_records: int = 0
    n_checkpoints: int = 0
    last_signed: int = 0  # records covered by the last valid checkpoint


def _fail(reason: str, **kw) -> ReceiptReport:
    return ReceiptReport(False, reason, **kw)


def verify_checkpoints(log, public_key) -> ReceiptReport:
    """Check a live log against its signed checkpoints: signatures, heads, Merkle roots, truncation."""
    cps = checkpoints(log)
    hashes = _hashes(log)
    return _check_against(cps, hashes, public_key, full=True)


def _check_against(cps: list[Checkpoint], hashes: list[str], public_key, *, full: bool) -> ReceiptReport:
    kid = key_id(public_key)
    n = len(hashes)
    last = 0
    for i, cp in enumerate(cps):
        if cp.key_id != kid or not cp.verify(public_key):
            return _fail(f"checkpoint {i} (n={cp.n}) is not validly signed by key {kid}", n_records=n,
                         n_checkpoints=len(cps))
        if i and cp.n < cps[i - 1].n:
            return _fail(f"checkpoint {i} covers fewer records ({cp.n}) than checkpoint {i - 1} ({cps[i - 1].n})",
                         n_records=n, n_checkpoints=len(cps))
        if full:
            if n < cp.n:
                return _fail(f"the log holds {n} records but checkpoint {i} signed {cp.n}: records "
                             f"{n}..{cp.n - 1} were cut from its tail", n_records=n, n_checkpoints=len(cps),
                             last_signed=last)
            head = hashes[cp.n - 1] if cp.n else GENESIS
            if head != cp.head:
                return _fail(f"record {cp.n - 1} does not match checkpoint {i}'s signed head: the log was "
                             "rewritten", n_records=n, n_checkpoints=len(cps), last_signed=last)
            if merkle_root([bytes.fromhex(h) for h in hashes[:cp.n]]).hex() != cp.root:
                return _fail(f"the Merkle root of records 0..{cp.n - 1} does not match checkpoint {i}",
                             n_records=n, n_checkpoints=len(cps), last_signed=last)
        last = cp.n
    if not cps:
        return ReceiptReport(True, f"{n} records; no signed checkpoint yet", n, 0, 0)
    return ReceiptReport(True, f"{n} records; {len(cps)} signed checkpoint(s) verified, the last covers "
                         f"{last} records", n, len(cps), last)


def _record_hash(r: dict) -> str:
    body = body_text(r["seq"], r["ts"], r["run"], r["actor"], r["action"], r["target"],
                     *encode_fields(r["args"], r["before"], r["after"]), r["outcome"], r["prev"])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def export_receipt(log, out: str | os.PathLike, *, key=None, run: str | None = None, sign: bool = True,
                   reason: str = "receipt") -> dict[str, Any]:
    """Write a receipt bundle (JSON) for the whole log or one run; return it.

    Args:
        log: The proof-of-action log.
        out: The JSON file to write.
        key: The signing key (default :func:`load_signing_key`).
        run: Only this run's records, each with an inclusion proof.
        sign: Sign a fresh checkpoint first, so every record is covered.
        reason: The fresh checkpoint's reason.
    """
    key = key if key is not None else load_signing_key()
    if sign:
        sign_checkpoint(log, key, reason=reason)
    cps = [c for c in checkpoints(log) if c.key_id == key_id(key)]
    if not cps:
        raise AuditError("no checkpoint signed by this key; sign one first (parsimon audit checkpoint)")
    records = log.records()
    last = cps[-1]
    bundle: dict[str, Any] = {"type": _TYPE_RECEIPT, "v": 1, "public_key": _raw_public(key.public_key()).hex(),
                              "key_id": key_id(key), "checkpoints": [c.as_dict() for c in cps],
                              "scope": "all" if run is None else {"run": run}, "exported_utc": utc_now()}
    if run is None:
        bundle["records"] = [r.as_dict() for r in records]
    else:
        leaves = [bytes.fromhex(r.hash) for r in records[:last.n]]
        mine = [r for r in records[:last.n] if r.run == run]
        bundle["records"] = [r.as_dict() for r in mine]
        bundle["proofs"] = {str(r.seq): [h.hex() for h in inclusion_proof(leaves, r.seq)] for r in mine}
        bundle["tree_size"] = last.n
    tmp = Path(str(out) + ".tmp")
    tmp.write_text(json.dumps(bundle, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out)
    return bundle


def verify_receipt(bundle: str | os.PathLike | dict, public_key) -> ReceiptReport:
    """Check a receipt offline with the public key alone (see the module docstring)."""
    if not isinstance(bundle, dict):
        try:
            bundle = json.loads(Path(bundle).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return _fail(f"the receipt cannot be read: {exc}")
    if isinstance(public_key, (str, bytes, os.PathLike)):
        public_key = load_public_key(public_key)
    if bundle.get("type") != _TYPE_RECEIPT or bundle.get("v") != 1:
        return _fail("not a parsimon audit receipt (type/version)")
    if bundle.get("public_key") != _raw_public(public_key).hex():
        return _fail("the receipt was signed by another key than the one given")
    try:
        cps = [Checkpoint(**c) for c in bundle["checkpoints"]]
        records = bundle["records"]
    except (KeyError, TypeError) as exc:
        return _fail(f"the receipt is malformed: {exc}")
    if not cps:
        return _fail("the receipt holds no signed checkpoint")
    hashes = []
    for r in records:
        try:
            h = _record_hash(r)
        except (KeyError, TypeError, ValueError) as exc:
            return _fail(f"record {r.get('seq') if isinstance(r, dict) else '?'} is malformed: {exc}")
        if h != r.get("hash"):
            return _fail(f"record {r['seq']} was modified: its hash does not match its content",
                         n_records=len(records))
        hashes.append(h)
    if bundle.get("scope") == "all":
        prev = GENESIS
        for i, r in enumerate(records):
            if r["seq"] != i:
                return _fail(f"record {i} has seq {r['seq']}: records are missing or out of order",
                             n_records=len(records))
            if r["prev"] != prev:
                return _fail(f"record {i} does not follow record {i - 1}", n_records=len(records))
            prev = r["hash"]
        return _check_against(cps, hashes, public_key, full=True)
    report = _check_against(cps, [], public_key, full=False)
    if not report.ok:
        return report
    last = cps[-1]
    root = bytes.fromhex(last.root)
    proofs = bundle.get("proofs") or {}
    for r in records:
        proof = [bytes.fromhex(h) for h in proofs.get(str(r["seq"]), [])]
        if not verify_inclusion(bytes.fromhex(r["hash"]), int(r["seq"]), last.n, proof, root):
            return _fail(f"record {r['seq']} is not included in the log signed at n={last.n} (its "
                         "inclusion proof fails)", n_records=len(records), n_checkpoints=len(cps))
    return ReceiptReport(True, f"{len(records)} record(s) of run {bundle['scope'].get('run')!r} proven included "
                         f"in the {last.n}-record log signed at {last.ts}", len(records), len(cps), last.n)
