"""Signed checkpoints and receipts: verified offline with the public key alone; tampering and truncation fail."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.governance import get_audit_log
from parsimon.governance.receipts import (
    Checkpointer,
    checkpoints,
    export_receipt,
    load_signing_key,
    public_key_pem,
    sign_checkpoint,
    verify_checkpoints,
    verify_receipt,
)


def _fill(log, n, start=0):
    for i in range(start, start + n):
        log.append(actor="agent", action="step", target=f"t{i}", args={"i": i}, outcome="ok",
                   run="run-a" if i % 3 else "run-b")


def test_checkpoints_incremental_equals_full_and_verify():
    log = get_audit_log()
    _fill(log, 10)
    key = load_signing_key()
    c = Checkpointer(log.path, key)
    assert c.sign("first").n == 10
    _fill(log, 7, 10)
    inc = c.sign("second")
    full = sign_checkpoint(log, key, reason="full")
    assert (inc.n, inc.head, inc.root) == (full.n, full.head, full.root) == (17, log.head().hash, full.root)
    assert verify_checkpoints(log, key.public_key()).ok
    other = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519").Ed25519PrivateKey.generate()
    assert not verify_checkpoints(log, other.public_key()).ok


def test_full_receipt_offline_and_tampering(tmp_path):
    log = get_audit_log()
    _fill(log, 12)
    key = load_signing_key()
    bundle = export_receipt(log, tmp_path / "r.json", key=key)
    pub = public_key_pem(key)
    assert verify_receipt(tmp_path / "r.json", pub).ok
    edited = json.loads(json.dumps(bundle))
    edited["records"][5]["outcome"] = "error"
    assert "record 5 was modified" in verify_receipt(edited, pub).reason
    dropped = json.loads(json.dumps(bundle))
    del dropped["records"][-3:]
    assert "cut from its tail" in verify_receipt(dropped, pub).reason
    forged = json.loads(json.dumps(bundle))
    forged["checkpoints"][-1]["n"] = 11
    assert "not validly signed" in verify_receipt(forged, pub).reason
    other = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519").Ed25519PrivateKey.generate()
    assert "another key" in verify_receipt(bundle, public_key_pem(other)).reason


def test_run_receipt_proves_inclusion_without_the_rest(tmp_path):
    log = get_audit_log()
    _fill(log, 20)
    bundle = export_receipt(log, tmp_path / "a.json", run="run-a")
    assert {r["run"] for r in bundle["records"]} == {"run-a"} and len(bundle["records"]) == 13
    pub = public_key_pem(load_signing_key())
    report = verify_receipt(tmp_path / "a.json", pub)
    assert report.ok and report.n_records == 13 and report.last_signed == 20
    swapped = json.loads(json.dumps(bundle))
    first, second = swapped["records"][0]["seq"], swapped["records"][1]["seq"]
    swapped["proofs"][str(first)], swapped["proofs"][str(second)] = bundle["proofs"][str(second)], bundle["proofs"][str(first)]
    assert "inclusion proof fails" in verify_receipt(swapped, pub).reason


def test_tail_truncation_before_the_last_checkpoint_is_detected(tmp_path):
    log = get_audit_log()
    _fill(log, 15)
    sign_checkpoint(log, reason="end of run")
    # cut the last 4 records and rewrite the stored head to match: the chain alone still verifies
    conn = sqlite3.connect(log.path)
    conn.execute("DELETE FROM audit_records WHERE seq >= 11")
    head = conn.execute("SELECT hash FROM audit_records WHERE seq = 10").fetchone()[0]
    conn.execute("UPDATE audit_head SET n = 11, hash = ?", (head,))
    conn.commit()
    conn.close()
    assert log.verify().ok
    pub = load_signing_key().public_key()
    report = verify_checkpoints(log, pub)
    assert not report.ok and "records 11..14 were cut from its tail" in report.reason
    # the same through the CLI, and in a receipt exported from the truncated log without signing anew
    runner = CliRunner()
    (tmp_path / "pub.pem").write_text(public_key_pem(pub))
    r = runner.invoke(app, ["audit", "verify-checkpoints", "--public-key", str(tmp_path / "pub.pem")])
    assert r.exit_code == 1 and "cut from its tail" in r.output
    export_receipt(log, tmp_path / "t.json", sign=False)
    r = runner.invoke(app, ["audit", "verify-receipt", str(tmp_path / "t.json"), "--public-key",
                            str(tmp_path / "pub.pem")])
    assert r.exit_code == 1 and "cut from its tail" in r.output


def test_cli_checkpoint_export_and_verify(tmp_path):
    log = get_audit_log()
    _fill(log, 5)
    runner = CliRunner()
    r = runner.invoke(app, ["audit", "checkpoint", "--reason", "nightly"])
    assert r.exit_code == 0 and "n=5" in r.output
    assert checkpoints(log)[-1].reason == "nightly"
    out = tmp_path / "receipt.json"
    r = runner.invoke(app, ["audit", "export", str(out), "--receipt", "--run", "run-a"])
    assert r.exit_code == 0, r.output
    pub = tmp_path / "key.pem"
    r = runner.invoke(app, ["audit", "public-key"])
    pub.write_text(r.output)
    # the verifier needs only the bundle and the public key: a fresh home with no store and no key
    r = runner.invoke(app, ["audit", "verify-receipt", str(out), "--public-key", str(pub)],
                      env={"PARSIMON_HOME": str(tmp_path / "elsewhere")})
    assert r.exit_code == 0 and r.output.startswith("OK: 3 record(s) of run 'run-a'")
    assert not (tmp_path / "elsewhere" / "governance.sqlite").exists()


def test_a_run_signs_a_checkpoint_at_its_end(tmp_path):
    from parsimon.governance.receipts import CheckpointOnRunEnd
    from parsimon.run import start_run

    sink = CheckpointOnRunEnd()
    with start_run("receipt demo", {"x": 1}, out_dir=tmp_path / "run", ledger=False, progress=False,
                   sinks=[sink]) as run:
        get_audit_log().append(actor="agent", action="step", outcome="ok")
        get_audit_log().append(actor="agent", action="step", outcome="ok")
    assert len(sink.signed) == 1 and sink.signed[0].n == 2 and sink.signed[0].reason == f"run end: {run.id}"
    assert checkpoints(get_audit_log())[-1] == sink.signed[0]
