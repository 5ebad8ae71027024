from __future__ import annotations

import socket
import time

import pytest

from parsimon.errors import BudgetExceeded, LLMError, MalformedReply
from parsimon.llm import ChatClient, LLMConfig
from tests.llm.mock_openai import MockOpenAI, Reply, completion

MSG = [{"role": "user", "content": "hi"}]


def _client(url, **kw):
    kw.setdefault("ledger", False)
    c = ChatClient(base_url=url, **kw)
    c.sleeps = []
    c._sleep = c.sleeps.append  # record back-off delays instead of sleeping
    return c


def test_request_shape_and_reply():
    with MockOpenAI([Reply(body=completion("Paris", 20, 2))]) as mock:
        c = _client(mock.base_url, model="m1", api_key="sk-test")
        r = c.chat(MSG, temperature=0.3, max_tokens=7, stop=["\n"], seed=5)
    req = mock.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    assert req["json"] == {"model": "m1", "messages": MSG, "temperature": 0.3, "max_tokens": 7,
                           "stop": ["\n"], "seed": 5}
    assert r.text == "Paris" and r.usage.prompt_tokens == 20 and r.usage.completion_tokens == 2
    assert r.usage.total_tokens == 22 and r.attempts == 1 and r.model == "mock-model"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_retries_transient_status(status):
    with MockOpenAI([Reply(status=status, body={"error": "busy"}), Reply()]) as mock:
        c = _client(mock.base_url, backoff=0.5)
        r = c.chat(MSG)
    assert r.attempts == 2 and len(mock.requests) == 2
    assert len(c.sleeps) == 1 and 0.375 <= c.sleeps[0] <= 0.625  # 0.5 s ± 25 % jitter


def test_backoff_doubles_and_honours_retry_after():
    script = [Reply(status=503), Reply(status=503), Reply(status=429, headers={"Retry-After": "3"}), Reply()]
    with MockOpenAI(script) as mock:
        c = _client(mock.base_url, backoff=1.0, max_retries=3)
        r = c.chat(MSG)
    assert r.attempts == 4
    assert 0.75 <= c.sleeps[0] <= 1.25 and 1.5 <= c.sleeps[1] <= 2.5 and c.sleeps[2] == 3.0


def test_gives_up_after_max_retries():
    with MockOpenAI([Reply(status=500, body={"error": "down"})]) as mock:
        c = _client(mock.base_url, max_retries=2)
        with pytest.raises(LLMError, match="after 3 attempt"):
            c.chat(MSG)
    assert len(mock.requests) == 3


def test_client_error_is_not_retried():
    with MockOpenAI([Reply(status=400, body={"error": "bad model"})]) as mock:
        c = _client(mock.base_url)
        with pytest.raises(LLMError, match="HTTP 400.*bad model"):
            c.chat(MSG)
    assert len(mock.requests) == 1


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = _client(f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(LLMError, match="ConnectError"):
        c.chat(MSG)
    assert len(c.sleeps) == 2


def test_timeout_is_retried():
    with MockOpenAI([Reply(delay=1.0), Reply()]) as mock:
        c = _client(mock.base_url, timeout=0.25, max_retries=1)
        t0 = time.perf_counter()
        r = c.chat(MSG)
        assert time.perf_counter() - t0 < 1.0  # the first attempt was cut at the timeout
    assert r.attempts == 2


def test_timeout_exhausted():
    with MockOpenAI([Reply(delay=0.6)]) as mock:
        c = _client(mock.base_url, timeout=0.2, max_retries=1)
        with pytest.raises(LLMError, match="ReadTimeout"):
            c.chat(MSG)


@pytest.mark.parametrize(
    "body,match",
    [
        (b"{not json", "not JSON"),
        ({"choices": []}, "no `choices`"),
        ({"choices": [{"text": "x"}]}, "message"),
        ({"choices": [{"message": {"content": 5}}]}, "not a string"),
    ],
)
def test_malformed_replies(body, match):
    with MockOpenAI([Reply(body=body)]) as mock:
        c = _client(mock.base_url)
        with pytest.raises(MalformedReply, match=match):
            c.chat(MSG)
    assert len(mock.requests) == 1


def test_bad_arguments():
    c = _client("http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="messages"):
        c.chat([])
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        c.chat([{"content": "no role"}])
    with pytest.raises(ValueError, match="max_tokens"):
        c.chat(MSG, max_tokens=0)
    with pytest.raises(ValueError, match="timeout"):
        ChatClient(timeout=0)
    with pytest.raises(ValueError, match="base_url"):
        ChatClient(base_url="ftp://x")  # a ConfigError, which is a ValueError


def test_config_from_environment(monkeypatch):
    monkeypatch.setenv("PARSIMON_LLM_BASE_URL", "http://example.test:1/v1/")
    monkeypatch.setenv("PARSIMON_LLM_MODEL", "envmodel")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("PARSIMON_LLM_PRICE_IN", "0.5")
    cfg = LLMConfig.resolve()
    assert cfg.base_url == "http://example.test:1/v1" and cfg.model == "envmodel" and cfg.api_key == "sk-env"
    assert cfg.price_in_per_1k == 0.5 and cfg.price_out_per_1k == 0.0
    assert LLMConfig.resolve(model="arg").model == "arg"  # arguments win
    monkeypatch.setenv("PARSIMON_LLM_PRICE_OUT", "cheap")
    with pytest.raises(ValueError, match="PARSIMON_LLM_PRICE_OUT"):
        LLMConfig.resolve()


def test_usage_and_cost_go_to_the_ledger():
    from parsimon.governance import get_ledger, run_scope

    with MockOpenAI([Reply(body=completion("a", 1000, 500))]) as mock:
        c = _client(mock.base_url, ledger=True, price_in_per_1k=0.01, price_out_per_1k=0.03, component="agent-x")
        with run_scope(run="r1", workflow="wf"):
            r1 = c.chat(MSG)
            r2 = c.chat(MSG)
    assert r1.cost == pytest.approx(0.01 + 0.015)
    rows = {row["component"]: row for row in get_ledger().totals(by="component", run="r1")}
    row = rows["agent-x"]
    assert row["tokens_in"] == 2000 and row["tokens_out"] == 1000
    assert row["money"] == pytest.approx(r1.cost + r2.cost)
    assert row["events"] == 2


def test_hard_budget_stops_the_call_before_sending():
    from parsimon.governance import get_ledger, run_scope

    ledger = get_ledger()
    ledger.set_budget(run="r2", metric="tokens", hard=1500)
    with MockOpenAI([Reply(body=completion("a", 1000, 400))]) as mock:
        c = _client(mock.base_url, ledger=True)
        with run_scope(run="r2"):
            c.chat(MSG)  # 1,400 tokens spent
            with pytest.raises(BudgetExceeded):
                c.chat([{"role": "user", "content": "x" * 800}])  # the estimate alone crosses 1,500
    assert len(mock.requests) == 1
