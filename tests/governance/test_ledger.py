from __future__ import annotations

import warnings

import pytest

from parsimon.errors import BudgetExceeded
from parsimon.governance import BudgetWarning, Ledger, get_ledger, run_scope
from tests.governance._gov_spawn import spawn, wait_ready


def test_get_ledger_one_instance_per_path(tmp_path, monkeypatch, _parsimon_home):
    a = get_ledger()
    assert a is get_ledger()
    assert a.path == (_parsimon_home / "governance.sqlite").resolve()
    other = get_ledger(tmp_path / "x.sqlite")
    assert other is not a and other is get_ledger(str(tmp_path / "x.sqlite"))
    monkeypatch.setenv("PARSIMON_HOME", str(tmp_path / "home2"))
    moved = get_ledger()
    assert moved is not a and moved.path == (tmp_path / "home2" / "governance.sqlite").resolve()


def test_charge_records_event_with_scope_and_meta():
    ledger = get_ledger()
    with run_scope("r1", workflow="wf"):
        eid = ledger.charge(component="llm", tokens_in=100, tokens_out=20, money=0.01, meta={"model": "m"})
    eid2 = ledger.charge(component="browser", actions=2, wall_s=1.5, gpu_s=0.25, run="r2")
    assert eid2 > eid
    events = ledger.events()
    assert [(e.id, e.run, e.workflow, e.component) for e in events] == [
        (eid, "r1", "wf", "llm"), (eid2, "r2", None, "browser")]
    assert events[0].meta == {"model": "m"} and events[0].tokens_in == 100 and events[0].money == 0.01
    assert events[1].actions == 2 and events[1].wall_s == 1.5 and events[1].gpu_s == 0.25
    assert [e.id for e in ledger.events(run="r2")] == [eid2]
    assert [e.id for e in ledger.events(component="llm")] == [eid]
    assert [e.id for e in ledger.events(limit=1)] == [eid2]


def test_totals_and_top_spenders_match_brute_force():
    ledger = get_ledger()
    rows = [("a", "r1", "w1", 10, 1, 0.5, 1), ("b", "r1", "w2", 5, 0, 2.0, 0), ("a", "r2", "w1", 1, 1, 0.25, 3),
            ("c", "r2", None, 0, 0, 0.0, 7)]
    for comp, run, wf, t_in, t_out, money, actions in rows:
        ledger.charge(component=comp, run=run, workflow=wf, tokens_in=t_in, tokens_out=t_out, money=money,
                      actions=actions)
    for by, col in (("component", 0), ("run", 1), ("workflow", 2)):
        got = {r[by]: r for r in ledger.totals(by)}
        keys = {row[col] for row in rows}
        assert set(got) == keys
        for key in keys:
            mine = [row for row in rows if row[col] == key]
            assert got[key]["tokens"] == sum(r[3] + r[4] for r in mine)
            assert got[key]["tokens_in"] == sum(r[3] for r in mine)
            assert got[key]["money"] == pytest.approx(sum(r[5] for r in mine))
            assert got[key]["actions"] == sum(r[6] for r in mine)
            assert got[key]["events"] == len(mine)
    only_r1 = ledger.totals("component", run="r1")
    assert [(r["component"], r["events"]) for r in only_r1] == [("a", 1), ("b", 1)]
    assert [r["component"] for r in ledger.top_spenders("money", "component", n=2)] == ["b", "a"]
    assert [r["component"] for r in ledger.top_spenders("actions", "component", n=1)] == ["c"]


def test_hard_limit_raises_before_recording_and_allows_exact():
    ledger = get_ledger()
    ledger.set_budget(run="r", metric="tokens", hard=100)
    ledger.charge(component="llm", tokens_in=60, tokens_out=40, run="r")  # exactly the limit is allowed
    with pytest.raises(BudgetExceeded) as info:
        ledger.charge(component="llm", tokens_in=1, run="r")
    msg = str(info.value)
    assert "run 'r'" in msg and "tokens" in msg and "100" in msg and "spent 100" in msg and "requested 1" in msg
    assert len(ledger.events()) == 1
    assert ledger.remaining(run="r", metric="tokens") == 0
    assert ledger.remaining(run="r", metric="money") is None
    ledger.charge(component="llm", tokens_in=5, run="other")  # another run is not limited


def test_workflow_limit_applies_across_runs_and_uses_scope():
    ledger = get_ledger()
    ledger.set_budget(workflow="wf", metric="money", hard=1.0)
    with run_scope("r1", workflow="wf"):
        ledger.charge(component="x", money=0.6)
    with run_scope("r2", workflow="wf"):
        with pytest.raises(BudgetExceeded, match="workflow 'wf'"):
            ledger.charge(component="x", money=0.5)
        with pytest.raises(BudgetExceeded):
            ledger.precheck(component="x", money=0.5)
        ledger.precheck(component="x", money=0.4)
    assert ledger.remaining(workflow="wf", metric="money") == pytest.approx(0.4)
    assert len(ledger.events()) == 1


def test_precheck_records_nothing():
    ledger = get_ledger()
    ledger.set_budget(run="r", metric="actions", soft=1, hard=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ledger.precheck(component="env", actions=3, run="r")
    assert ledger.events() == []
    with pytest.raises(BudgetExceeded):
        ledger.precheck(component="env", actions=4, run="r")


def test_soft_limit_warns_once_and_calls_callbacks():
    ledger = get_ledger()
    calls = []
    ledger.on_soft_limit(lambda *a: calls.append(a))
    ledger.set_budget(run="r", metric="money", soft=1.0, hard=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ledger.charge(component="x", money=1.0, run="r")  # reaching the soft limit is not crossing it
        assert caught == [] and calls == []
        ledger.charge(component="x", money=0.5, run="r")
        ledger.charge(component="x", money=0.25, run="r")
    assert [w.category for w in caught] == [BudgetWarning]
    assert issubclass(BudgetWarning, UserWarning)
    assert "run 'r'" in str(caught[0].message) and "money" in str(caught[0].message)
    assert calls == [("run", "r", "money", 1.0, 1.5)]


def test_budget_validation_names_the_argument():
    ledger = get_ledger()
    with pytest.raises(ValueError, match="`run` and `workflow`"):
        ledger.set_budget(metric="money", hard=1)
    with pytest.raises(ValueError, match="`run` and `workflow`"):
        ledger.set_budget(run="a", workflow="b", metric="money", hard=1)
    with pytest.raises(ValueError, match="`metric`.*'actions'"):
        ledger.set_budget(run="a", metric="dollars", hard=1)
    with pytest.raises(ValueError, match="`soft` must be <= `hard`"):
        ledger.set_budget(run="a", metric="money", soft=2, hard=1)
    with pytest.raises(ValueError, match="`hard`"):
        ledger.set_budget(run="a", metric="money", hard=-1)
    with pytest.raises(ValueError, match="`tokens_in`"):
        ledger.charge(component="x", tokens_in=-1)
    with pytest.raises(ValueError, match="`money`"):
        ledger.charge(component="x", money=float("nan"))
    with pytest.raises(ValueError, match="`component`"):
        ledger.charge(component="")
    with pytest.raises(ValueError, match="`meta`"):
        ledger.charge(component="x", meta={"f": object()})
    with pytest.raises(ValueError, match="`by`"):
        ledger.totals("model")
    assert ledger.events() == []


def test_budget_replace_and_clear():
    ledger = get_ledger()
    ledger.set_budget(run="r", metric="gpu_s", soft=1, hard=2)
    assert ledger.limits(run="r", metric="gpu_s") == (1, 2)
    ledger.set_budget(run="r", metric="gpu_s", hard=10)
    assert ledger.limits(run="r", metric="gpu_s") == (None, 10)
    ledger.set_budget(run="r", metric="gpu_s")
    assert ledger.limits(run="r", metric="gpu_s") == (None, None)
    assert ledger.budgets() == []


def test_budget_persists_across_instances(tmp_path):
    path = tmp_path / "g.sqlite"
    Ledger(path).set_budget(run="r", metric="money", hard=1.0)
    Ledger(path).charge(component="x", money=0.75, run="r")
    fresh = Ledger(path)
    assert fresh.remaining(run="r", metric="money") == pytest.approx(0.25)
    with pytest.raises(BudgetExceeded):
        fresh.charge(component="x", money=0.5, run="r")


def test_four_processes_lose_nothing(tmp_path):
    path = tmp_path / "multi.sqlite"
    get_ledger(path).count()  # create the schema before the writers race
    procs = [spawn("ledger", path, 2000, f"w{i}") for i in range(4)]
    for p in procs:
        wait_ready(p)
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ledger = Ledger(path)
    assert ledger.count() == 8000
    totals = {r["component"]: r for r in ledger.totals("component")}
    assert {k: v["events"] for k, v in totals.items()} == {f"w{i}": 2000 for i in range(4)}
    for i in range(4):
        metas = sorted(e.meta["i"] for e in ledger.events(component=f"w{i}"))
        assert metas == list(range(2000))
