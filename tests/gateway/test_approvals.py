"""Calls a policy sends to a person, through the gateway: held open, 409 + resume token, approve / edit /
reject / expire, one execution per approval, and an agent that resumes after its process was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import parsimon
from parsimon.cli import app
from parsimon.errors import ApprovalPending, ApprovalRejected
from parsimon.governance import ApprovalStore, get_audit_log, get_ledger
from parsimon.llm import ChatClient
from tests.gateway.conftest import one_model

RULES = """
[keys.alice]
token = "sk-alice"
workflow = "ops"

[[rule]]
name = "prod-needs-a-person"
on = "model"
match = "m"
args = { content = "*production*" }
effect = "require_approval"
risk = "high"
expires_s = 60

[[rule]]
name = "quick-expiry"
on = "model"
match = "m"
args = { content = "*expire me*" }
effect = "require_approval"
expires_s = 0.3
"""
PROD = [{"role": "user", "content": "Drop the production table?"}]


def _gateway(serve, mock_upstream, wait: float = 0.0):
    text = one_model(mock_upstream.base_url).replace("[gateway]\nport = 0\n",
                                                     f"[gateway]\nport = 0\napproval_wait_s = {wait}\n")
    return serve(text + RULES)


def test_pending_then_approved_resumes_once(mock_upstream, serve):
    gw = _gateway(serve, mock_upstream)
    client = ChatClient(base_url=gw.base_url, model="m", api_key="sk-alice", max_retries=0)
    assert client.chat([{"role": "user", "content": "hello"}], max_tokens=4).text == "ok"  # no rule fires
    with pytest.raises(ApprovalPending) as exc:
        client.chat(PROD, max_tokens=4)
    pending = exc.value
    assert pending.approval_id and pending.resume_token
    assert len(mock_upstream.requests) == 1  # nothing reached the upstream
    a = ApprovalStore().get(pending.approval_id)
    assert (a.kind, a.action, a.rule, a.risk, a.key, a.workflow) == ("model", "m", "prod-needs-a-person", "high",
                                                                      "alice", "ops")
    r = CliRunner().invoke(app, ["approvals", "list", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["id"] == pending.approval_id
    r = CliRunner().invoke(app, ["approvals", "approve", pending.approval_id, "--by", "dana"])
    assert r.exit_code == 0, r.output
    reply = client.chat(PROD, max_tokens=4, resume_token=pending.resume_token)
    assert reply.text == "ok" and len(mock_upstream.requests) == 2
    with pytest.raises(Exception, match="once"):  # 409 approval_used: one approval, one execution
        client.chat(PROD, max_tokens=4, resume_token=pending.resume_token)
    # the token resumes only the request it was issued for
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "m", "messages": PROD, "max_tokens": 5},
                   headers={"Authorization": "Bearer sk-alice", "X-Parsimon-Resume-Token": pending.resume_token})
    assert r.status_code == 409 and r.json()["error"]["type"] == "approval_mismatch"
    log = [(r.actor, r.action, r.outcome) for r in get_audit_log().records()]
    assert log[1] == ("key:alice", "approval.request", "pending") and log[2] == ("dana", "approval.approve", "approved")
    assert log[3][:2] == ("key:alice", "model.call") and log[3][2] == "ok"
    assert get_audit_log().records()[3].args["approval"] == pending.approval_id


def test_rejected_and_expired_fail_closed(mock_upstream, serve):
    gw = _gateway(serve, mock_upstream)
    client = ChatClient(base_url=gw.base_url, model="m", api_key="sk-alice", max_retries=0)
    with pytest.raises(ApprovalPending) as exc:
        client.chat(PROD, max_tokens=4)
    ApprovalStore().decide(exc.value.approval_id, approve=False, by="erin", note="never in prod")
    with pytest.raises(ApprovalRejected) as rej:
        client.chat(PROD, max_tokens=4, resume_token=exc.value.resume_token)
    assert rej.value.state == "rejected"
    with pytest.raises(ApprovalPending) as exc2:
        client.chat([{"role": "user", "content": "please expire me"}], max_tokens=4)
    time.sleep(0.4)
    with pytest.raises(ApprovalRejected) as rej2:
        client.chat([{"role": "user", "content": "please expire me"}], max_tokens=4,
                    resume_token=exc2.value.resume_token)
    assert rej2.value.state == "expired"
    assert len(mock_upstream.requests) == 0
    assert "approval.expire" in [r.action for r in get_audit_log().records()]


def test_request_held_open_until_a_person_edits_and_approves(mock_upstream, serve):
    gw = _gateway(serve, mock_upstream, wait=20)
    out = {}

    def agent():
        with ChatClient(base_url=gw.base_url, model="m", api_key="sk-alice", max_retries=0, timeout=30) as c:
            out["reply"] = c.chat(PROD, max_tokens=50)

    t = threading.Thread(target=agent)
    t.start()
    store = ApprovalStore()
    while not store.list("pending"):
        time.sleep(0.02)
    a = store.list("pending")[0]
    edited = dict(a.args, messages=[{"role": "user", "content": "Describe the production table."}], max_tokens=3)
    store.decide(a.id, approve=True, by="frank", args=edited)
    t.join(20)
    assert out["reply"].text == "ok"
    sent = mock_upstream.requests[-1]["json"]
    assert sent["messages"][0]["content"] == "Describe the production table." and sent["max_tokens"] == 3
    assert get_audit_log().records()[-1].args["max_tokens"] == 3


AGENT = """
import sys, uuid
from parsimon.errors import ApprovalPending
from parsimon.llm import ChatClient
from parsimon.run import start_run

out, base_url = sys.argv[1], sys.argv[2]
with start_run("gateway agent", {"task": "prod"}, out_dir=out, resume=True, ledger=False, progress=False) as run:
    state = run.load_checkpoint() or {}
    if "request_id" not in state:
        # the idempotency key goes into the checkpoint before the call, so a restart finds its approval
        state = {"request_id": uuid.uuid4().hex}
        run.save_checkpoint(state)
    print("sending", flush=True)
    client = ChatClient(base_url=base_url, model="m", api_key="sk-alice", max_retries=0, timeout=60)
    try:
        reply = client.chat([{"role": "user", "content": "Drop the production table?"}], max_tokens=4,
                            request_id=state["request_id"], resume_token=state.get("token"))
    except ApprovalPending as p:
        run.save_checkpoint({**state, "token": p.resume_token})
        print("paused", p.approval_id, flush=True)
        sys.exit(3)
    run.set_metrics(reply=reply.text)
    print("reply", reply.text, flush=True)
"""


def test_agent_killed_while_waiting_resumes_after_restart(mock_upstream, serve, tmp_path):
    gw = _gateway(serve, mock_upstream, wait=30)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    env = dict(os.environ, PYTHONPATH=str(Path(parsimon.__file__).resolve().parent.parent))
    cmd = [sys.executable, str(script), str(tmp_path / "run"), gw.base_url]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "sending"
    store = ApprovalStore()
    deadline = time.time() + 60
    while not store.list("pending") and time.time() < deadline:
        time.sleep(0.05)
    pending = store.list("pending")[0]
    proc.send_signal(signal.SIGKILL)  # the agent dies while its call waits for a person
    proc.wait(10)
    store.decide(pending.id, approve=True, by="gina")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "reply ok"
    assert len(mock_upstream.requests) == 1
    assert store.get(pending.id).state == "executed"
    assert [e.workflow for e in get_ledger().events()] == ["ops"]
