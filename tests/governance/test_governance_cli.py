from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.governance import get_audit_log, get_ledger

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, list(args))


def test_groups_registered_with_help():
    for args in (["ledger", "--help"], ["audit", "--help"], ["ledger", "show", "--help"],
                 ["ledger", "budget", "--help"], ["audit", "verify", "--help"], ["audit", "show", "--help"]):
        r = _invoke(*args)
        assert r.exit_code == 0, r.output


def test_ledger_show_table_and_json():
    ledger = get_ledger()
    ledger.charge(component="llm", tokens_in=100, tokens_out=5, money=0.5, run="r1", workflow="w")
    ledger.charge(component="browser", actions=3, money=0.1, run="r2")
    r = _invoke("ledger", "show")
    assert r.exit_code == 0 and "llm" in r.output and "browser" in r.output and "Spending by component" in r.output
    r = _invoke("ledger", "show", "--by", "run", "--json")
    data = json.loads(r.output)
    assert {row["run"]: row["events"] for row in data["rows"]} == {"r1": 1, "r2": 1}
    r = _invoke("ledger", "show", "--top", "1", "--json")
    assert [row["component"] for row in json.loads(r.output)["rows"]] == ["llm"]
    r = _invoke("ledger", "show", "--workflow", "w", "--json")
    assert [row["component"] for row in json.loads(r.output)["rows"]] == ["llm"]
    r = _invoke("ledger", "show", "--by", "model")
    assert r.exit_code == 2 and "--by" in r.output


def test_ledger_budget_sets_and_validates():
    r = _invoke("ledger", "budget", "--run", "r1", "--metric", "money", "--soft", "1", "--hard", "2")
    assert r.exit_code == 0, r.output
    assert get_ledger().limits(run="r1", metric="money") == (1, 2)
    r = _invoke("ledger", "show", "--json")
    assert json.loads(r.output)["budgets"][0]["remaining"] == 2
    r = _invoke("ledger", "budget", "--run", "r1", "--metric", "dollars", "--hard", "2")
    assert r.exit_code == 2 and "metric" in r.output
    r = _invoke("ledger", "budget", "--run", "r1", "--metric", "money", "--soft", "3", "--hard", "2")
    assert r.exit_code == 2 and "soft" in r.output
    r = _invoke("ledger", "budget", "--metric", "money", "--hard", "2")
    assert r.exit_code == 2
    r = _invoke("ledger", "budget", "--run", "r1", "--metric", "money", "--clear")
    assert r.exit_code == 0 and get_ledger().limits(run="r1", metric="money") == (None, None)


def test_audit_verify_exit_codes_and_show(tmp_path):
    log = get_audit_log()
    for i in range(6):
        log.append(actor="agent", action="click", target=f"#b{i}", outcome="ok")
    r = _invoke("audit", "verify")
    assert r.exit_code == 0 and "OK: 6 records verified" in r.output
    r = _invoke("audit", "show", "--last", "2")
    assert r.exit_code == 0 and "#b5" in r.output and "#b3" not in r.output
    head = _invoke("audit", "head").output.strip()
    out = tmp_path / "log.jsonl"
    assert _invoke("audit", "export", str(out)).exit_code == 0
    assert _invoke("audit", "verify", "--jsonl", str(out), "--expect-head", head).exit_code == 0
    sqlite3.connect(str(log.path), isolation_level=None).execute(
        "UPDATE audit_records SET target = '#evil' WHERE seq = 2")
    r = _invoke("audit", "verify")
    assert r.exit_code == 1 and "first bad record: 2" in r.output
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:1] + lines[2:]))
    r = _invoke("audit", "verify", "--jsonl", str(out))
    assert r.exit_code == 1 and "first bad record: 1" in r.output
    r = _invoke("audit", "verify", "--jsonl", str(tmp_path / "missing.jsonl"))
    assert r.exit_code == 2
    r = _invoke("audit", "verify", "--expect-head", "nonsense")
    assert r.exit_code == 2
