"""Ledger reservations: an upper bound held against the hard limits before a call, settled after."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import parsimon
from parsimon.errors import BudgetExceeded
from parsimon.governance import Ledger, get_audit_log, get_ledger
from parsimon.governance.ledger import settle_and_record


def test_reserve_counts_against_the_hard_limit_until_settled():
    ledger = get_ledger()
    ledger.set_budget(run="r", metric="money", hard=1.0)
    a = ledger.reserve(component="llm", money=0.6, tokens_in=20, tokens_out=5, run="r")
    assert ledger.reserved(run="r", metric="money") == pytest.approx(0.6)
    with pytest.raises(BudgetExceeded, match="reserved by calls in flight 0.6"):
        ledger.reserve(component="llm", money=0.5, run="r")
    with pytest.raises(BudgetExceeded):  # a plain charge sees the reservation too
        ledger.charge(component="tool", money=0.5, run="r")
    ledger.settle(a, component="llm", money=0.2, tokens_in=10, tokens_out=3, run="r", meta={"model": "m"})
    assert ledger.spent(run="r", metric="money") == pytest.approx(0.2)
    assert ledger.reserved(run="r", metric="money") == 0.0
    b = ledger.reserve(component="llm", money=0.8, run="r")
    assert ledger.release(b) and not ledger.release(b)
    assert ledger.spent(run="r", metric="money") == pytest.approx(0.2)
    event = ledger.events(run="r")[0]
    assert (event.tokens_in, event.tokens_out, event.meta) == (10, 3, {"model": "m"})


def test_overrun_is_recorded_and_expired_reservations_stop_counting():
    ledger = get_ledger()
    ledger.set_budget(workflow="w", metric="tokens", hard=100)
    r = ledger.reserve(component="llm", tokens_in=10, tokens_out=10, workflow="w")
    ledger.settle(r, component="llm", tokens_in=15, tokens_out=10, workflow="w")
    assert ledger.events(workflow="w")[0].meta == {"overrun": ["tokens"]}
    stale = ledger.reserve(component="llm", tokens_in=70, workflow="w", ttl_s=0.05)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(component="llm", tokens_in=10, workflow="w")
    time.sleep(0.1)
    assert ledger.reserve(component="llm", tokens_in=10, workflow="w") > stale
    assert ledger.purge_expired() == 1


def test_settle_and_record_commit_together():
    ledger, log = get_ledger(), get_audit_log()
    r = ledger.reserve(component="llm", money=0.1, run="r")
    event, rec = settle_and_record(ledger, log, r, settle={"component": "llm", "money": 0.05, "run": "r"},
                                   record={"actor": "key:a", "action": "model.call", "target": "m", "outcome": "ok"})
    assert rec.after == {"ledger_event": event} and rec.seq == 0 and log.verify().ok
    # a record that cannot be written rolls the charge back with it
    r2 = ledger.reserve(component="llm", money=0.1, run="r")
    with pytest.raises(ValueError):
        settle_and_record(ledger, log, r2, settle={"component": "llm", "money": 0.05, "run": "r"},
                          record={"actor": "", "action": "model.call"})
    assert ledger.count() == 1 and ledger.reserved(run="r", metric="money") == pytest.approx(0.1)


WORKER = """
import sys
from parsimon.errors import BudgetExceeded
from parsimon.governance import Ledger
ledger = Ledger(sys.argv[1])
ok = 0
for i in range(40):
    try:
        r = ledger.reserve(component="w", money=0.03, workflow="shared")
    except BudgetExceeded:
        continue
    ledger.settle(r, component="w", money=0.02, workflow="shared")
    ok += 1
print(ok)
"""


def test_processes_racing_for_one_budget_never_overshoot(tmp_path):
    path = tmp_path / "gov.sqlite"
    Ledger(path).set_budget(workflow="shared", metric="money", hard=1.0)
    script = tmp_path / "w.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(Path(parsimon.__file__).resolve().parent.parent))
    procs = [subprocess.Popen([sys.executable, str(script), str(path)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    oks = [int(p.communicate(timeout=120)[0]) for p in procs]
    ledger = Ledger(path)
    spent = ledger.spent(workflow="shared", metric="money")
    assert spent <= 1.0 and sum(oks) == len(ledger.events(workflow="shared"))
    assert spent == pytest.approx(0.02 * sum(oks))
    assert spent > 0.5  # most of the budget was used: the races refused only what did not fit
