from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import time

import pytest

from parsimon.errors import AuditError
from parsimon.governance import AuditLog, JsonlAuditLog, get_audit_log, run_scope, verify_jsonl
from parsimon.governance.chain import GENESIS, body_text, encode_fields, line_for
from tests.governance._gov_spawn import spawn, wait_ready


def _fill(log, n=10):
    return [log.append(actor="agent", action="click", target=f"#b{i}", args={"i": i, "text": "héllo ✓"},
                       before={"screenshot_sha256": hashlib.sha256(b"%d" % i).hexdigest()},
                       after={"url": f"https://x/{i}"}, outcome="ok") for i in range(n)]


def test_append_chains_records_and_uses_scope(_parsimon_home):
    log = get_audit_log()
    assert log is get_audit_log() and log.path == (_parsimon_home / "governance.sqlite").resolve()
    with run_scope("r7"):
        first = log.append(actor="agent", action="open", target="https://example.test")
    second = log.append(actor="user", action="approve", args={"n": 1}, run="r8")
    assert (first.seq, first.prev, first.run) == (0, GENESIS, "r7")
    assert (second.seq, second.prev, second.run) == (1, first.hash, "r8")
    assert [r.hash for r in log.records()] == [first.hash, second.hash]
    assert [r.seq for r in log.records(run="r8")] == [1]
    assert [r.seq for r in log.records(last=1)] == [1]
    assert log.head() == (2, second.hash)
    report = log.verify()
    assert report.ok and report.n_records == report.n_valid == 2 and report.first_bad is None


def test_canonical_encoding_is_sorted_compact_utf8_json():
    log = get_audit_log()
    rec = _fill(log, 1)[0]
    expected = json.dumps({k: getattr(rec, k) for k in ("action", "actor", "after", "args", "before", "outcome",
                                                       "prev", "run", "seq", "target", "ts")},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = body_text(rec.seq, rec.ts, rec.run, rec.actor, rec.action, rec.target,
                     *encode_fields(rec.args, rec.before, rec.after), rec.outcome, rec.prev)
    assert body == expected and "héllo ✓" in body
    assert rec.hash == hashlib.sha256(expected.encode("utf-8")).hexdigest()


def test_append_validates_arguments():
    log = get_audit_log()
    with pytest.raises(ValueError, match="`actor`"):
        log.append(actor="", action="x")
    with pytest.raises(ValueError, match="`args`"):
        log.append(actor="a", action="x", args=[1, 2])
    with pytest.raises(ValueError, match="`before`"):
        log.append(actor="a", action="x", before={"v": float("nan")})
    with pytest.raises(ValueError, match="`target`"):
        log.append(actor="a", action="x", target=5)
    assert log.head().n == 0


def _db(log):
    return sqlite3.connect(str(log.path), isolation_level=None)


SQL_TAMPERS = {
    "edit": ("UPDATE audit_records SET outcome = 'forged' WHERE seq = 3", 3, "modified"),
    "edit_args": ("UPDATE audit_records SET args_json = '{\"i\":99}' WHERE seq = 6", 6, "modified"),
    "delete": ("DELETE FROM audit_records WHERE seq = 4", 4, "seq 5"),
    "truncate": ("DELETE FROM audit_records WHERE seq >= 7", 7, "truncated"),
}


@pytest.mark.parametrize("kind", sorted(SQL_TAMPERS))
def test_sqlite_tamper_is_detected(kind):
    log = get_audit_log()
    _fill(log)
    sql, first_bad, words = SQL_TAMPERS[kind]
    _db(log).execute(sql)
    report = log.verify()
    assert not report.ok and report.first_bad == first_bad and words in report.reason, report


def test_sqlite_record_appended_behind_the_writers_back():
    log = get_audit_log()
    recs = _fill(log)
    body = body_text(10, recs[9].ts, None, "mallory", "pay", None, None, None, None, "ok", recs[9].hash)
    digest = hashlib.sha256(body.encode()).hexdigest()
    _db(log).execute("INSERT INTO audit_records VALUES (10, ?, NULL, 'mallory', 'pay', NULL, NULL, NULL, NULL, "
                     "'ok', ?, ?)", (recs[9].ts, recs[9].hash, digest))
    report = log.verify()
    assert not report.ok and report.first_bad == 10 and "not covered" in report.reason


def test_sqlite_swap_two_records_is_detected():
    log = get_audit_log()
    _fill(log)
    db = _db(log)
    cols = "ts, run, actor, action, target, args_json, before_json, after_json, outcome, prev, hash"
    a, b = (db.execute(f"SELECT {cols} FROM audit_records WHERE seq = ?", (s,)).fetchone() for s in (2, 5))
    sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    db.execute(f"UPDATE audit_records SET {sets} WHERE seq = 2", b)
    db.execute(f"UPDATE audit_records SET {sets} WHERE seq = 5", a)
    report = log.verify()
    assert not report.ok and report.first_bad == 2


def test_sqlite_well_forged_insertion_is_reported_where_the_chain_breaks():
    log = get_audit_log()
    recs = _fill(log)
    db = _db(log)
    for seq in range(9, 2, -1):
        db.execute("UPDATE audit_records SET seq = seq + 1 WHERE seq = ?", (seq,))
    body = body_text(3, recs[2].ts, None, "mallory", "pay", None, None, None, None, "ok", recs[2].hash)
    digest = hashlib.sha256(body.encode()).hexdigest()
    db.execute("INSERT INTO audit_records VALUES (3, ?, NULL, 'mallory', 'pay', NULL, NULL, NULL, NULL, 'ok', ?, ?)",
               (recs[2].ts, recs[2].hash, digest))
    report = log.verify()
    # Record 3 is self-consistent and links to record 2; the first record that cannot be right is 4.
    assert not report.ok and report.first_bad == 4 and report.n_valid == 4


def test_sqlite_consistent_rewrite_needs_an_external_anchor():
    log = get_audit_log()
    recs = _fill(log)
    kept = log.head()
    db = _db(log)
    db.execute("DELETE FROM audit_records WHERE seq >= 8")
    db.execute("UPDATE audit_head SET n = 8, hash = ? WHERE id = 0", (recs[7].hash,))
    assert log.verify().ok  # undetectable from inside the file, as documented
    report = log.verify(expected_head=kept)
    assert not report.ok and report.first_bad == 8 and "expected head" in report.reason
    assert log.verify(expected_head=(5, recs[4].hash)).ok  # an older anchor is a prefix: still fine
    bad = log.verify(expected_head=(5, "f" * 64))
    assert not bad.ok and bad.first_bad == 4


def test_sqlite_missing_head_is_reported_and_blocks_appends():
    log = get_audit_log()
    _fill(log, 3)
    _db(log).execute("DELETE FROM audit_head")
    report = log.verify()
    assert not report.ok and "head is missing" in report.reason
    with pytest.raises(AuditError, match="head is missing"):
        log.append(actor="a", action="x")


def _jsonl(tmp_path, n=10):
    log = JsonlAuditLog(tmp_path / "log.jsonl")
    _fill(log, n)
    return log, log.path.read_bytes().splitlines(keepends=True)


def _write(path, lines):
    path.write_bytes(b"".join(lines))


def test_jsonl_log_roundtrip_and_export_match(tmp_path):
    log, lines = _jsonl(tmp_path)
    assert len(lines) == 10 and log.verify().ok and log.head().n == 10
    assert get_audit_log(log.path) is get_audit_log(str(log.path)) and isinstance(get_audit_log(log.path),
                                                                                  JsonlAuditLog)
    sql = get_audit_log()
    _fill(sql)
    head = sql.export_jsonl(tmp_path / "export.jsonl")
    assert head == sql.head()
    report = verify_jsonl(tmp_path / "export.jsonl", expected_head=head)
    assert report.ok and report.n_records == 10
    assert [r.hash for r in JsonlAuditLog(tmp_path / "export.jsonl").records()] == [r.hash for r in sql.records()]
    assert json.loads((tmp_path / "export.jsonl.head").read_bytes()) == {"n": 10, "hash": head.hash}


def _edit(lines):
    lines[3] = lines[3].replace(b'"outcome":"ok"', b'"outcome":"ko"')


def _edit_rehash(lines):
    body = lines[3][84:-2].replace(b'"outcome":"ok"', b'"outcome":"ko"')
    lines[3] = line_for(body.decode(), hashlib.sha256(body).hexdigest())


def _swap(lines):
    lines[2], lines[5] = lines[5], lines[2]


JSONL_TAMPERS = {
    "edit": (_edit, 3, "modified"),
    "edit_and_rehash": (_edit_rehash, 4, "does not follow"),
    "delete": (lambda ls: ls.pop(4), 4, "seq 5"),
    "insert_copy": (lambda ls: ls.insert(3, ls[1]), 3, "seq 1"),
    "swap": (_swap, 2, "seq 5"),
    "truncate": (lambda ls: ls.__delitem__(slice(7, None)), 7, "truncated"),
    "garbage_line": (lambda ls: ls.__setitem__(6, b"hello\n"), 6, "unreadable"),
}


@pytest.mark.parametrize("kind", sorted(JSONL_TAMPERS))
def test_jsonl_tamper_is_detected(tmp_path, kind):
    log, lines = _jsonl(tmp_path)
    fn, first_bad, words = JSONL_TAMPERS[kind]
    fn(lines)
    _write(log.path, lines)
    report = verify_jsonl(log.path)
    assert not report.ok and report.first_bad == first_bad and words in report.reason, report
    assert report.n_valid == first_bad


def test_jsonl_insert_forged_record_with_valid_link(tmp_path):
    log, lines = _jsonl(tmp_path)
    prev = lines[2][9:73].decode()
    body = body_text(3, "2026-01-01T00:00:00.000000Z", None, "mallory", "pay", None, None, None, None, "ok", prev)
    lines.insert(3, line_for(body, hashlib.sha256(body.encode()).hexdigest()))
    _write(log.path, lines)
    report = verify_jsonl(log.path)
    assert not report.ok and report.first_bad == 4 and "seq 3" in report.reason


def test_jsonl_torn_final_line_after_a_crash_verifies_the_prefix(tmp_path):
    log, lines = _jsonl(tmp_path)
    # A crash in the middle of appending record 10: its line is half written, the anchor still says 10.
    extra = line_for(body_text(10, "2026-01-01T00:00:00.000000Z", None, "a", "x", None, None, None, None, None,
                               lines[9][9:73].decode()), "0" * 64)
    _write(log.path, lines + [extra[:50]])
    report = verify_jsonl(log.path)
    assert report.ok and report.torn_tail and report.n_records == report.n_valid == 10 and "torn" in report.reason
    # The next writer moves the fragment aside and continues the chain.
    fresh = JsonlAuditLog(log.path)
    rec = fresh.append(actor="agent", action="resume")
    assert rec.seq == 10
    report = fresh.verify()
    assert report.ok and not report.torn_tail and report.n_records == 11
    assert (tmp_path / "log.jsonl.torn").read_bytes() == extra[:50] + b"\n"


def test_jsonl_torn_line_that_cuts_an_anchored_record_is_truncation(tmp_path):
    log, lines = _jsonl(tmp_path)
    _write(log.path, lines[:9] + [lines[9][:40]])
    report = verify_jsonl(log.path)
    assert not report.ok and report.torn_tail and report.first_bad == 9 and "truncated" in report.reason
    with pytest.raises(AuditError, match="truncated"):
        JsonlAuditLog(log.path).append(actor="a", action="x")


def test_jsonl_without_anchor_says_truncation_is_undetectable(tmp_path):
    log, lines = _jsonl(tmp_path, 4)
    os.remove(log.head_path)
    report = verify_jsonl(log.path)
    assert report.ok and "cannot be detected" in report.reason
    assert not verify_jsonl(log.path, expected_head=(6, "0" * 64)).ok


def _kill_after(proc, seconds):
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_jsonl_writer_loses_nothing(tmp_path, seed):
    path = tmp_path / "kill.jsonl"
    proc = spawn("jsonl", path, 0, "killed")
    wait_ready(proc)
    _kill_after(proc, random.Random(seed).uniform(0.2, 0.6))
    report = verify_jsonl(path)
    assert report.ok, report
    n_lines = path.read_bytes().count(b"\n")
    assert report.n_records == report.n_valid == n_lines > 0
    records = JsonlAuditLog(path).records()
    assert [r.args["i"] for r in records] == list(range(n_lines))
    after = JsonlAuditLog(path)
    after.append(actor="next", action="resume")
    assert after.verify().ok and after.verify().n_records == n_lines + 1


def test_sigkill_slow_writer_leaves_a_torn_tail_that_verifies(tmp_path):
    rng = random.Random(3)
    for attempt in range(10):
        path = tmp_path / f"slow{attempt}.jsonl"
        proc = spawn("slow-jsonl", path, 0, "slow")
        wait_ready(proc)
        _kill_after(proc, rng.uniform(0.15, 0.4))
        data = path.read_bytes()
        report = verify_jsonl(path)
        assert report.ok, report
        assert report.n_records == report.n_valid == data.count(b"\n")
        if not data.endswith(b"\n"):
            break
    else:
        pytest.fail("no kill landed inside a write in 10 attempts")
    assert report.torn_tail and report.n_records > 0
    log = JsonlAuditLog(path)
    assert log.append(actor="next", action="resume").seq == report.n_records
    assert log.verify().ok and not log.verify().torn_tail


def test_sigkill_sqlite_writer_loses_nothing(tmp_path):
    path = tmp_path / "kill.sqlite"
    proc = spawn("audit", path, 0, "killed")
    wait_ready(proc)
    _kill_after(proc, random.Random(5).uniform(0.2, 0.5))
    log = AuditLog(path)
    report = log.verify()
    assert report.ok and report.n_records == log.head().n > 0
    assert [r.args["i"] for r in log.records()] == list(range(report.n_records))


@pytest.mark.parametrize("form", ["sqlite", "jsonl"])
def test_four_processes_append_concurrently(tmp_path, form):
    path = tmp_path / ("multi.sqlite" if form == "sqlite" else "multi.jsonl")
    get_audit_log(path).head()
    procs = [spawn("audit", path, 2000, f"w{i}") for i in range(4)]
    for p in procs:
        wait_ready(p)
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    log = AuditLog(path) if form == "sqlite" else JsonlAuditLog(path)
    report = log.verify()
    assert report.ok and report.n_records == 8000, report
    records = log.records()
    assert [r.seq for r in records] == list(range(8000))
    for i in range(4):
        assert sorted(r.args["i"] for r in records if r.actor == f"w{i}") == list(range(2000))
