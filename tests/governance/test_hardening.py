"""Regression tests for what a hostile or careless user broke in the governance store (issue: hardening).
Each test reproduces one report; it failed before the fix."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from parsimon.errors import BudgetExceeded, ConfigError
from parsimon.governance import AuditLog, Ledger


@pytest.fixture()
def ledger(tmp_path):
    return Ledger(tmp_path / "g.sqlite")


def _cli(*args, env_home=None):
    import os

    env = dict(os.environ)
    if env_home is not None:
        env["PARSIMON_HOME"] = str(env_home)
    return subprocess.run([sys.executable, "-m", "parsimon.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("kwargs, arg", [
    ({"tokens_in": 10**30}, "tokens_in"), ({"tokens_out": 9 * 10**18}, "tokens_out"),
    ({"money": 1e308}, "money"), ({"money": float("inf")}, "money"), ({"actions": -1}, "actions"),
    ({"wall_s": float("nan")}, "wall_s"), ({"gpu_s": 2e12}, "gpu_s"),
])
def test_amounts_are_bounded_at_the_door_with_the_argument_named(ledger, kwargs, arg):
    with pytest.raises(ConfigError, match=f"`{arg}`"):
        ledger.charge(component="x", run="r", **kwargs)
    assert ledger.count() == 0


def test_huge_charges_no_longer_break_the_totals(tmp_path, ledger):
    for _ in range(2):
        ledger.charge(component="x", run="r", tokens_in=10**12, money=10**12)
    rows = ledger.totals("run")
    assert rows[0]["tokens"] == 2 * 10**12 and rows[0]["money"] == 2e12
    res = _cli("ledger", "show", env_home=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr


def test_reaching_the_hard_limit_exactly_in_float_steps_is_allowed(ledger):
    ledger.set_budget(run="r", metric="money", hard=0.3)
    for _ in range(3):
        ledger.charge(component="x", run="r", money=0.1)
    with pytest.raises(BudgetExceeded):
        ledger.charge(component="x", run="r", money=1e-6)
    assert ledger.spent(run="r", metric="money") == pytest.approx(0.3)


def test_budget_values_are_bounded(ledger):
    with pytest.raises(ConfigError, match="`hard`"):
        ledger.set_budget(run="r", metric="money", hard=1e300)


def _log_with(tmp_path, n=5):
    log = AuditLog(tmp_path / "a.sqlite")
    for i in range(n):
        log.append(actor="agent", action="click", target=f"#b{i}", args={"i": i}, outcome="ok")
    return log


def test_verify_on_dropped_tables_fails_and_does_not_recreate_them(tmp_path):
    log = _log_with(tmp_path)
    log.close()
    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.executescript("DROP TABLE audit_records; DROP TABLE audit_head;")
    con.close()
    rep = AuditLog(tmp_path / "a.sqlite").verify()
    assert not rep.ok and "no audit tables" in rep.reason
    con = sqlite3.connect(tmp_path / "a.sqlite")
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "audit_records" not in names
    res = _cli("audit", "verify", "--path", str(tmp_path / "a.sqlite"))
    assert res.returncode == 1 and "FAILED" in res.stdout and "Traceback" not in res.stderr


def test_blob_in_a_text_column_is_a_bad_record_not_a_traceback(tmp_path):
    log = _log_with(tmp_path)
    log.close()
    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.execute("UPDATE audit_records SET target = ? WHERE seq = 2", (b"\x00\xff",))
    con.commit()
    con.close()
    rep = AuditLog(tmp_path / "a.sqlite").verify()
    assert not rep.ok and rep.first_bad == 2
    res = _cli("audit", "verify", "--path", str(tmp_path / "a.sqlite"))
    assert res.returncode == 1 and "first bad record: 2" in res.stdout and "Traceback" not in res.stderr
    res = _cli("audit", "show", "--path", str(tmp_path / "a.sqlite"))
    assert res.returncode == 0 and "Traceback" not in res.stderr


def test_a_file_that_is_not_sqlite_gives_one_line(tmp_path):
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    for args in (("audit", "verify", "--path", str(bad)), ("audit", "show", "--path", str(bad)),
                 ("audit", "head", "--path", str(bad))):
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.startswith("error:") and "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1


def test_show_with_invalid_args_json(tmp_path):
    log = _log_with(tmp_path)
    log.close()
    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.execute("UPDATE audit_records SET args_json = '{not json' WHERE seq = 1")
    con.commit()
    con.close()
    res = _cli("audit", "show", "--json", "--path", str(tmp_path / "a.sqlite"))
    assert res.returncode == 0, res.stderr
    rec = [json.loads(line) for line in res.stdout.splitlines()][1]
    assert rec["args"] == {"__invalid_json__": "{not json"}


def test_expect_head_in_upper_case_is_the_same_head(tmp_path):
    log = _log_with(tmp_path)
    head = log.head()
    res = _cli("audit", "verify", "--path", str(tmp_path / "a.sqlite"), "--expect-head", f"{head.n}:{head.hash.upper()}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert log.verify(expected_head=(head.n, head.hash.upper())).ok


def test_failure_message_counts_every_record(tmp_path):
    log = _log_with(tmp_path, n=50)
    log.close()
    con = sqlite3.connect(tmp_path / "a.sqlite")
    con.execute("UPDATE audit_records SET outcome = 'forged' WHERE seq = 20")
    con.commit()
    con.close()
    rep = AuditLog(tmp_path / "a.sqlite").verify()
    assert not rep.ok and rep.first_bad == 20 and rep.n_records == 50 and rep.n_valid == 20
    res = _cli("audit", "verify", "--path", str(tmp_path / "a.sqlite"))
    assert "20 of 50 records" in res.stdout


def test_unreadable_head_file_next_to_a_jsonl_log(tmp_path):
    log = _log_with(tmp_path)
    log.export_jsonl(tmp_path / "x.jsonl")
    (tmp_path / "x.jsonl.head").write_bytes(b"\x00\xff garbage")
    res = _cli("audit", "verify", "--jsonl", str(tmp_path / "x.jsonl"))
    assert res.returncode == 1 and "anchor" in res.stdout and "Traceback" not in res.stderr


def test_missing_or_emptied_log_against_an_expected_head_fails(tmp_path):
    log = _log_with(tmp_path)
    head = log.export_jsonl(tmp_path / "x.jsonl")
    expect = f"{head.n}:{head.hash}"
    (tmp_path / "x.jsonl").write_bytes(b"")
    res = _cli("audit", "verify", "--jsonl", str(tmp_path / "x.jsonl"), "--expect-head", expect)
    assert res.returncode == 1
    (tmp_path / "x.jsonl").unlink()
    res = _cli("audit", "verify", "--jsonl", str(tmp_path / "x.jsonl"), "--expect-head", expect)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    res = _cli("audit", "verify", "--path", str(tmp_path / "missing.sqlite"), "--expect-head", expect)
    assert res.returncode != 0 and "Traceback" not in res.stderr
