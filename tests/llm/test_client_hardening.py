"""Regression tests for the LLM client's hardening (each failed before its fix)."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from parsimon.errors import ConfigError, LLMError
from parsimon.llm import ChatClient
from tests.llm.mock_openai import MockOpenAI, Reply, TrickleServer, completion

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf"])
def test_retry_after_that_is_not_a_delay_falls_back_to_backoff(value):
    with MockOpenAI([Reply(status=503, headers={"Retry-After": value}), Reply()]) as mock:
        c = ChatClient(base_url=mock.base_url, ledger=False, backoff=0.01, max_retries=1)
        slept = []
        real = c._sleep
        c._sleep = lambda s: (slept.append(s), real(s))  # the real sleep raises on a negative or NaN delay
        r = c.chat(MSG)
    assert r.attempts == 2 and r.text == "hello"
    assert len(slept) == 1 and math.isfinite(slept[0]) and 0.0075 <= slept[0] <= 0.0125


def test_trickling_server_cannot_outlast_the_attempt_timeout():
    with TrickleServer(interval=0.5, max_bytes=20) as srv:  # 10 s of trickle if nothing cuts it
        c = ChatClient(base_url=srv.base_url, ledger=False)
        t0 = time.perf_counter()
        with pytest.raises(LLMError, match="time limit of 2 s"):
            c.chat(MSG, timeout=2, max_retries=0)
        assert time.perf_counter() - t0 < 3.0


def test_deadline_bounds_retries_and_backoff():
    with MockOpenAI([Reply(status=503)]) as mock:
        c = ChatClient(base_url=mock.base_url, ledger=False, backoff=0.4, max_retries=10, deadline=1.0)
        t0 = time.perf_counter()
        with pytest.raises(LLMError, match="deadline of 1 s"):
            c.chat(MSG)
        assert time.perf_counter() - t0 < 1.5
    assert len(mock.requests) < 5


def test_deadline_transport_wraps_the_connection_pool():
    # The per-call deadline rests on wrapping httpcore's network backend; an httpx upgrade that moves it
    # must fail here, not silently lose the deadline.
    from parsimon.llm.transport import _DeadlineBackend

    c = ChatClient(base_url="http://127.0.0.1:9/v1", ledger=False)
    pool = c._http._transport._pool
    assert isinstance(pool._network_backend, _DeadlineBackend)


@pytest.mark.parametrize("bad", [-100, 10**30, "many", 1.5, float("nan")])
def test_implausible_usage_is_estimated_flagged_and_charged(bad):
    from parsimon.governance import get_ledger, run_scope

    body = completion("four words of reply", 7, 3)
    body["usage"]["completion_tokens"] = bad if not (isinstance(bad, float) and math.isnan(bad)) else "NaN"
    run = f"usage-{abs(hash(str(bad)))}"
    with MockOpenAI([Reply(body=body)]) as mock:
        c = ChatClient(base_url=mock.base_url, price_in_per_1k=1.0, price_out_per_1k=1.0)
        with run_scope(run=run):
            r = c.chat(MSG)
    assert r.text == "four words of reply" and r.usage_estimated
    assert r.usage.prompt_tokens == 7 and r.usage.completion_tokens == len("four words of reply") // 4
    events = get_ledger().events(run=run)
    totals = {row["component"]: row for row in get_ledger().totals(by="component", run=run)}
    assert totals["llm"]["tokens_in"] == 7 and totals["llm"]["tokens_out"] == r.usage.completion_tokens
    assert totals["llm"]["money"] == pytest.approx(r.cost) and r.cost > 0
    assert len(events) == 1 and events[0].meta["usage_estimated"] is True
    assert "completion_tokens" in events[0].meta["usage_reported"]


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "file:///etc/passwd", "localhost:8765/v1", "http://"])
def test_non_http_base_url_is_a_config_error_naming_the_argument(url, monkeypatch):
    with pytest.raises(ConfigError, match="`base_url`"):
        ChatClient(base_url=url)
    monkeypatch.setenv("PARSIMON_LLM_BASE_URL", url)
    with pytest.raises(ConfigError, match="PARSIMON_LLM_BASE_URL"):
        ChatClient()


def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "parsimon.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_bad_base_url_is_one_line_exit_2():
    p = _cli("llm", "chat", "hi", "--base-url", "ftp://example.com/v1")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0
    assert p.stderr.startswith("error:") and "--base-url" in p.stderr


def test_cli_timeout_ends_a_hanging_chat():
    with TrickleServer(interval=0.5, max_bytes=40) as srv:  # 20 s of trickle
        t0 = time.perf_counter()
        p = _cli("llm", "chat", "hi", "--base-url", srv.base_url, "--timeout", "2")
        elapsed = time.perf_counter() - t0
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "time limit" in p.stderr or "deadline" in p.stderr
    assert elapsed < 12  # start-up of the CLI included
