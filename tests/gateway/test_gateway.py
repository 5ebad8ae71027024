"""The gateway's model door against mock upstreams: real clients, keys, budgets, routing, limits, records."""

from __future__ import annotations

import hashlib
import threading
import time

import httpx
import openai
import pytest

from parsimon.errors import BudgetExceeded
from parsimon.gateway.calls import prompt_bytes_bound
from parsimon.gateway.limits import KillSwitch
from parsimon.gateway.mock import MockUpstream
from parsimon.governance import get_audit_log, get_ledger
from parsimon.governance.approvals import digest
from parsimon.llm import ChatClient
from tests.gateway.conftest import one_model

KEYS = """
[keys.alice]
token = "sk-alice"
workflow = "team-a"
[keys.bob]
token = "sk-bob"
workflow = "team-b"
models = ["other*"]
"""
HI = [{"role": "user", "content": "hi there"}]


def test_openai_client_plain_and_streaming(mock_upstream, serve):
    gw = serve(one_model(mock_upstream.base_url, extra=KEYS))
    client = openai.OpenAI(base_url=gw.base_url, api_key="sk-alice", max_retries=0)
    models = {m.id for m in client.models.list()}
    assert {"m", "default"} <= models
    r = client.chat.completions.create(model="default", messages=HI, max_tokens=5)
    assert r.choices[0].message.content == "ok" and r.usage.completion_tokens == 1
    # the upstream got the upstream's model name and the bounded max_tokens
    assert mock_upstream.requests[-1]["json"]["model"] == "mock" and mock_upstream.requests[-1]["json"]["max_tokens"] == 5
    chunks = list(client.chat.completions.create(model="m", messages=HI, max_tokens=5, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"
    assert chunks[-1].usage.completion_tokens == 1
    # without include_usage the client gets no usage chunk (the gateway still counts the stream)
    chunks = list(client.chat.completions.create(model="m", messages=HI, max_tokens=5, stream=True))
    assert all(c.choices for c in chunks)
    records = get_audit_log().records()
    assert [r.action for r in records] == ["model.call"] * 3 and all(r.outcome == "ok" for r in records)
    assert {r.actor for r in records} == {"key:alice"} and records[1].args["stream"] is True
    events = get_ledger().events()
    assert len(events) == 3 and all(e.workflow == "team-a" for e in events)
    # prices 1.0 / 2.0 per 1k tokens, usage from the upstream
    assert events[0].money == pytest.approx(events[0].tokens_in / 1000 + 2 * events[0].tokens_out / 1000)
    assert [r.after["ledger_event"] for r in records] == [e.id for e in events]


def test_chat_client_charged_once_with_its_run(mock_upstream, serve):
    from parsimon.governance import run_scope

    gw = serve(one_model(mock_upstream.base_url, extra=KEYS))
    with run_scope("run-xyz", workflow="ignored-by-key"), ChatClient(base_url=gw.base_url, model="m",
                                                                      api_key="sk-alice") as c:
        reply = c.chat(HI, max_tokens=4)
    assert reply.text == "ok" and reply.cost > 0
    events = get_ledger().events()
    # one event (the gateway's), on the client's run, the key's workflow, the client's component
    assert [(e.run, e.workflow, e.component) for e in events] == [("run-xyz", "team-a", "llm")]
    assert reply.cost == pytest.approx(events[0].money)
    assert get_audit_log().records()[0].run == "run-xyz"


def test_keys_models_and_errors(mock_upstream, serve):
    gw = serve(one_model(mock_upstream.base_url, extra=KEYS))
    http = httpx.Client(base_url=gw.base_url)
    body = {"model": "m", "messages": HI}
    assert http.post("/chat/completions", json=body).status_code == 401
    assert http.post("/chat/completions", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    r = http.post("/chat/completions", json=body, headers={"Authorization": "Bearer sk-bob"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "model_not_allowed"
    r = http.post("/chat/completions", json={**body, "model": "gpt-9"}, headers={"Authorization": "Bearer sk-alice"})
    assert r.status_code == 404 and "m" in r.json()["error"]["message"]
    r = http.post("/chat/completions", json={"model": "m", "messages": []}, headers={"Authorization": "Bearer sk-alice"})
    assert r.status_code == 400
    # the refused call of bob is in the log; 401/404/400 are not actions
    assert [(r.actor, r.outcome.split(":")[0]) for r in get_audit_log().records()] == [("key:bob", "refused")]


def test_budget_reserved_before_the_call_and_refused_with_402(serve):
    with MockUpstream("echo") as up:
        gw = serve(one_model(up.base_url, price_in=1000.0, price_out=1000.0, extra=KEYS + """
[[budget]]
workflow = "team-a"
metric = "money"
hard = 150.0
"""))
        http = httpx.Client(base_url=gw.base_url, headers={"Authorization": "Bearer sk-alice"})
        # the bound: bytes of "hi there" + message and template allowances, tokens in; max_tokens out; 1.0/token
        bound = prompt_bytes_bound({"messages": HI})
        assert bound == 64 + 8 + len("hi there")
        r = http.post("/chat/completions", json={"model": "m", "messages": HI, "max_tokens": 40})
        assert r.status_code == 200  # 80 + 40 <= 150
        spent = get_ledger().spent(workflow="team-a", metric="money")
        assert spent == pytest.approx(float(r.headers["x-parsimon-cost"]))
        r = http.post("/chat/completions", json={"model": "m", "messages": HI, "max_tokens": 100})
        assert spent + bound + 100 > 150 and r.status_code == 402 and r.json()["error"]["type"] == "budget_exceeded"
        assert len(up.requests) == 1  # the refused call never reached the upstream
        assert get_ledger().spent(workflow="team-a", metric="money") == spent
        assert get_ledger().reserved(workflow="team-a", metric="money") == 0.0
        assert get_audit_log().records()[-1].action == "budget.refuse"


def test_fallback_after_bounded_retries(serve):
    with MockUpstream("echo", fail_first=5, fail_status=503, name="flaky") as flaky, \
            MockUpstream("echo", name="backup") as backup:
        gw = serve(f"""
[upstreams.flaky]
base_url = "{flaky.base_url}"
retries = 2
backoff_s = 0.001
[upstreams.backup]
base_url = "{backup.base_url}"
[models.main]
upstream = "flaky"
fallbacks = ["spare"]
[models.spare]
upstream = "backup"
""")
        r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "main", "messages": HI})
        assert r.status_code == 200 and r.headers["x-parsimon-model"] == "spare"
        assert len(flaky.requests) == 3 and len(backup.requests) == 1  # 1 try + 2 retries, then the fallback
        rec = get_audit_log().records()[-1]
        assert rec.after["attempts"] == 4 and rec.after["model"] == "spare"
        # a 400 is the request's fault: no retry, no fallback
    with MockUpstream("echo", fail_first=10, fail_status=400) as bad, MockUpstream("echo") as other:
        gw = serve(f"""
[upstreams.bad]
base_url = "{bad.base_url}"
retries = 3
[upstreams.other]
base_url = "{other.base_url}"
[models.main]
upstream = "bad"
fallbacks = ["spare"]
[models.spare]
upstream = "other"
""")
        r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "main", "messages": HI})
        assert r.status_code == 502 and len(bad.requests) == 1 and len(other.requests) == 0


def test_cascade_escalates_low_confidence_only(serve):
    with MockUpstream("arithmetic", accuracy=0.5, name="weak") as weak, \
            MockUpstream("arithmetic", accuracy=1.0, name="strong") as strong:
        gw = serve(f"""
[upstreams.weak]
base_url = "{weak.base_url}"
[upstreams.strong]
base_url = "{strong.base_url}"
[models.weak]
upstream = "weak"
price_in_per_1k = 0.1
price_out_per_1k = 0.1
[models.strong]
upstream = "strong"
price_in_per_1k = 10
price_out_per_1k = 10
[cascades.auto]
models = ["weak", "strong"]
threshold = 0.65
""")
        http = httpx.Client(base_url=gw.base_url)
        escalated = 0
        for a in range(12):
            q = [{"role": "user", "content": f"What is {a} + {3 * a + 1}?"}]
            r = http.post("/chat/completions", json={"model": "auto", "messages": q, "max_tokens": 8})
            stages = r.headers["x-parsimon-cascade"].split(",")
            weak_conf = float(stages[0].split(":")[1])
            assert (len(stages) == 2) == (weak_conf < 0.65)  # escalated exactly when unsure
            escalated += len(stages) == 2
            assert "logprobs" not in r.json()["choices"][0]  # the client did not ask for them
            if len(stages) == 2:
                assert r.json()["choices"][0]["message"]["content"] == str(a + 3 * a + 1)
        assert 0 < escalated < 12
        assert all(req["json"].get("logprobs") for req in weak.requests)
        assert len(strong.requests) == escalated


def test_rate_limit_per_key(mock_upstream, serve):
    gw = serve(one_model(mock_upstream.base_url, extra="""
[keys.alice]
token = "sk-alice"
rate_per_s = 0.5
burst = 2
"""))
    http = httpx.Client(base_url=gw.base_url, headers={"Authorization": "Bearer sk-alice"})
    codes = [http.post("/chat/completions", json={"model": "m", "messages": HI}).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    r = http.post("/chat/completions", json={"model": "m", "messages": HI})
    assert int(r.headers["retry-after"]) >= 1


def test_kill_switch_stops_new_calls_at_once_and_cuts_streams(serve):
    with MockUpstream(lambda b: (" ".join(["w"] * 200), 0.9), chunk_delay_s=0.02) as up:
        gw = serve(one_model(up.base_url, extra=KEYS))
        http = httpx.Client(base_url=gw.base_url, headers={"Authorization": "Bearer sk-alice"}, timeout=30)
        seen: list[str] = []

        def stream():
            with http.stream("POST", "/chat/completions", json={"model": "m", "messages": HI, "stream": True,
                                                                "max_tokens": 300}) as r:
                for line in r.iter_lines():
                    seen.append(line)

        t = threading.Thread(target=stream)
        t.start()
        while len(seen) < 10:
            time.sleep(0.01)
        KillSwitch().engage("key", "alice", reason="runaway agent")  # another process would do the same
        r = http.post("/chat/completions", json={"model": "m", "messages": HI})
        assert r.status_code == 403 and r.json()["error"]["type"] == "kill_switch"
        t.join(10)
        data = [x for x in seen if x.startswith("data:")]
        assert "data: [DONE]" not in data and "cancelled" in data[-1]
        assert len(data) < 150  # cut well before the 200 words
        rec = [r for r in get_audit_log().records() if r.args and r.args.get("stream")][0]
        assert rec.outcome.startswith("error: cancelled: kill switch")
        assert rec.after["usage"]["completion_tokens"] == len(data) - 1  # what flowed was charged
        # bob is not covered; a global switch covers everyone
        other = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "m", "messages": HI},
                           headers={"Authorization": "Bearer sk-bob"})
        assert other.status_code == 403 and other.json()["error"]["type"] == "model_not_allowed"
        KillSwitch().release("key", "alice")
        assert http.post("/chat/completions", json={"model": "m", "messages": HI}).status_code == 200
        r = httpx.post(f"{gw.url}/admin/kill", json={"kind": "global", "reason": "maintenance"})
        assert r.status_code == 200
        assert http.post("/chat/completions", json={"model": "m", "messages": HI}).status_code == 403


def test_signed_checkpoints_at_interval_and_shutdown(mock_upstream, serve):
    from parsimon.governance.receipts import checkpoints, load_signing_key, verify_checkpoints

    gw = serve(one_model(mock_upstream.base_url).replace("checkpoint_interval_s = 0",
                                                         "checkpoint_interval_s = 0\ncheckpoint_every = 3"))
    for _ in range(7):
        assert httpx.post(f"{gw.base_url}/chat/completions", json={"model": "m", "messages": HI}).status_code == 200
    deadline = time.time() + 10
    log = get_audit_log()
    while len(checkpoints(log)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    r = httpx.post(f"{gw.url}/admin/runs/gateway-anonymous/end")
    assert r.status_code == 200 and r.json()["n"] == 7 and r.json()["reason"] == "run end: gateway-anonymous"
    gw.stop()
    cps = checkpoints(log)
    ns = [c.n for c in cps]
    # every 3 records a signature is scheduled; it covers what the log holds when it runs (3 or more)
    assert len(ns) >= 3 and ns == sorted(ns) and ns[0] >= 3 and ns[-1] == 7
    assert {c.reason for c in cps} >= {"interval", "run end: gateway-anonymous", "shutdown"}
    report = verify_checkpoints(log, load_signing_key().public_key())
    assert report.ok and report.last_signed == 7


def test_request_digest_in_the_log(mock_upstream, serve):
    gw = serve(one_model(mock_upstream.base_url))
    body = {"model": "m", "messages": HI, "max_tokens": 3}
    r = httpx.post(f"{gw.base_url}/chat/completions", json=body)
    rec = get_audit_log().records()[int(r.headers["x-parsimon-audit-seq"])]
    assert rec.args["request_digest"] == digest(body)
    # the digest of the bytes the client received, so the client can check its own copy
    assert rec.after["response_digest"] == hashlib.sha256(r.content).hexdigest()


def test_budget_exceeded_is_not_a_parsimon_crash(mock_upstream, serve):
    # an in-process charge and the gateway share one ledger: the gateway sees what the process spent
    gw = serve(one_model(mock_upstream.base_url, extra="""
[[budget]]
run = "shared-run"
metric = "tokens"
hard = 150
"""))
    get_ledger().charge(component="local", tokens_in=140, run="shared-run")
    r = httpx.post(f"{gw.base_url}/chat/completions", json={"model": "m", "messages": HI},
                   headers={"X-Parsimon-Run": "shared-run"})
    assert r.status_code == 402
    with pytest.raises(BudgetExceeded):
        get_ledger().charge(component="local", tokens_in=11, run="shared-run")
