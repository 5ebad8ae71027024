"""Durable approvals: states, expiry (fail closed), who decided in the log, the in-process pause and resume."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import parsimon
from parsimon.errors import ApprovalError, ApprovalPending, ApprovalRejected
from parsimon.governance import (
    ApprovalAsk,
    ApprovalStore,
    EscalationPolicy,
    ProposedAction,
    escalate,
    get_audit_log,
    run_scope,
)
from parsimon.governance.approvals import digest


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_request_decide_consume_and_log():
    store = ApprovalStore()
    with run_scope("run-1", workflow="wf"):
        a, token = store.request(kind="tool", action="files.delete", args={"path": "/x"}, risk="high",
                                 rule="no-delete", reason="deletes a file", expires_s=60)
    assert a.state == "pending" and a.run == "run-1" and a.workflow == "wf" and token
    assert a.args_digest == digest({"path": "/x"})
    assert store.by_token(token).id == a.id and store.list("pending")[0].id == a.id
    with pytest.raises(ApprovalPending):
        store.consume(a.id)
    done = store.decide(a.id, approve=True, by="alice", args={"path": "/tmp/x"}, note="safer path")
    assert done.state == "approved" and done.decided_by == "alice" and done.effective_args == {"path": "/tmp/x"}
    with pytest.raises(ApprovalError, match="already approved"):
        store.decide(a.id, approve=False, by="bob")
    assert store.consume(a.id).state == "executed"
    with pytest.raises(ApprovalError, match="once"):
        store.consume(a.id)
    records = get_audit_log().records()
    assert [(r.actor, r.action, r.outcome) for r in records] == [
        ("agent", "approval.request", "pending"), ("alice", "approval.edit", "approved")]
    assert records[1].args["edited_args_digest"] == digest({"path": "/tmp/x"})
    assert get_audit_log().verify().ok


def test_expiry_rejects_fail_closed():
    clock = Clock()
    store = ApprovalStore(clock=clock)
    a, token = store.request(kind="action", action="pay", args={"amount": 5}, expires_s=30)
    clock.t += 29.9
    assert store.get(a.id).state == "pending"
    clock.t += 0.2
    assert store.get(a.id).state == "expired"
    with pytest.raises(ApprovalRejected) as exc:
        store.decide(a.id, approve=True, by="late-alice")
    assert exc.value.state == "expired"
    with pytest.raises(ApprovalRejected):
        store.consume(a.id)
    assert [r.action for r in get_audit_log().records()] == ["approval.request", "approval.expire"]


def test_request_id_is_idempotent_per_key():
    store = ApprovalStore()
    a, token = store.request(kind="model", action="m", args={"x": 1}, key="alice", request_id="req-1")
    b, again = store.request(kind="model", action="m", args={"x": 1}, key="alice", request_id="req-1")
    c, other = store.request(kind="model", action="m", args={"x": 1}, key="bob", request_id="req-1")
    assert b.id == a.id and again is None and token
    assert c.id != a.id and other
    assert store.find("alice", "req-1").id == a.id


def test_escalate_pauses_until_a_person_decides_in_another_thread():
    policy = EscalationPolicy()
    store = ApprovalStore()
    seen = []

    def person():
        while not store.list("pending"):
            time.sleep(0.01)
        pending = store.list("pending")[0]
        store.decide(pending.id, approve=True, by="alice", args={"to": "ops@example.org"})

    t = threading.Thread(target=person)
    t.start()
    ask = ApprovalAsk(store, wait_s=10, on_pending=lambda a, tok: seen.append((a.id, tok)))
    decision = escalate(ProposedAction("send", target="mail", args={"to": "all@example.org"}, confidence=0.95),
                        policy=policy, ask=ask, audit=get_audit_log())
    t.join()
    assert decision.verdict == "auto" and decision.asked and decision.args == {"to": "ops@example.org"}
    assert decision.approval_id == seen[0][0]
    log = get_audit_log().records()
    # each record commits with the change it records, so no reader sees a change before its record:
    # the person sees the request only with its record, the escalation sees the decision only with the edit's
    assert [r.action for r in log] == ["approval.request", "approval.edit", "decide"]
    (dec,) = [r for r in log if r.action == "decide"]
    assert dec.after["edited_args"] == {"to": "ops@example.org"} and dec.outcome == "auto"


@pytest.mark.parametrize("separate", ["sqlite", "jsonl"])
def test_no_reader_sees_a_request_or_decision_before_its_record(tmp_path, separate):
    """A log record is written before its change is visible: a second store on the same file, asked at the
    moment each record is written, does not see the change yet (the log in another SQLite file or JSONL)."""
    log = get_audit_log(tmp_path / ("log.sqlite" if separate == "sqlite" else "log.jsonl"))
    clock = Clock()
    seen = []

    class Watching:
        path = log.path

        def append(self, **record):
            other = sqlite3.connect(tmp_path / "g.sqlite")  # another reader: what it may see now
            try:
                seen.append((record["action"], other.execute("SELECT id, state FROM approvals ORDER BY created")
                             .fetchall()))
            finally:
                other.close()
            return log.append(**record)

    store = ApprovalStore(tmp_path / "g.sqlite", audit=Watching(), clock=clock)
    a, _ = store.request(kind="action", action="pay", args={"amount": 5}, expires_s=30)
    clock.t += 1
    b, _ = store.request(kind="action", action="pay", args={"amount": 6}, expires_s=30)
    store.decide(a.id, approve=False, by="alice")
    clock.t += 45
    assert store.get(b.id).state == "expired"
    assert seen == [("approval.request", []), ("approval.request", [(a.id, "pending")]),
                    ("approval.reject", [(a.id, "pending"), (b.id, "pending")]),
                    ("approval.expire", [(a.id, "rejected"), (b.id, "pending")])]
    assert [r.action for r in log.records()] == [s[0] for s in seen] and log.verify().ok


def test_escalate_rejected_and_still_pending():
    store = ApprovalStore()
    ask = ApprovalAsk(store, wait_s=0.05)
    with pytest.raises(ApprovalPending) as exc:
        escalate(ProposedAction("delete", target="/data"), policy=EscalationPolicy(), ask=ask)
    pending = exc.value
    assert pending.resume_token and store.get(pending.approval_id).state == "pending"
    store.decide(pending.approval_id, approve=False, by="bob")
    answer = ask.resume(pending.resume_token)
    assert not answer.approved and answer.state == "rejected"


AGENT = """
import sys
from parsimon.errors import ApprovalPending
from parsimon.governance import ApprovalAsk, EscalationPolicy, ProposedAction, escalate, get_audit_log
from parsimon.run import start_run

out = sys.argv[1]
with start_run("approval agent", {"task": "delete old data"}, out_dir=out, resume=True, ledger=False,
               progress=False) as run:
    state = run.load_checkpoint() or {}
    ask = ApprovalAsk(wait_s=0.2, on_pending=lambda a, token: run.save_checkpoint(
        {"approval": a.id, "token": token}))
    action = ProposedAction("delete", target="/data/old", args={"older_than_days": 30})
    try:
        if "token" in state:
            answer = ask.resume(state["token"], wait_s=5)
            verdict = "auto" if answer.approved else "refuse"
        else:
            verdict = escalate(action, policy=EscalationPolicy(), ask=ask).verdict
    except ApprovalPending as p:
        print("paused", p.approval_id, flush=True)
        sys.exit(3)
    if verdict == "auto":
        get_audit_log().append(actor="agent", action="delete", target="/data/old", outcome="ok")
    run.set_metrics(verdict=verdict)
    print("verdict", verdict, flush=True)
"""


def test_paused_agent_resumes_after_its_process_restarted(tmp_path):
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    env = dict(os.environ, PYTHONPATH=str(Path(parsimon.__file__).resolve().parent.parent))
    run_dir = tmp_path / "run"
    first = subprocess.run([sys.executable, str(script), str(run_dir)], env=env, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 3, first.stderr
    approval_id = first.stdout.split()[1]
    # a person decides while the agent is gone
    from typer.testing import CliRunner

    from parsimon.cli import app

    r = CliRunner().invoke(app, ["approvals", "approve", approval_id, "--by", "carol"])
    assert r.exit_code == 0, r.output
    second = subprocess.run([sys.executable, str(script), str(run_dir)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "verdict auto"
    actions = [(r.actor, r.action) for r in get_audit_log().records()]
    assert actions == [("agent", "approval.request"), ("carol", "approval.approve"), ("agent", "delete")]
