"""One behaviour when no model server answers: the default local endpoint starts the local model, any other
endpoint fails loudly, and a run whose every LLM call failed is not a success (llm chat, cta eval, games evolve)."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

import parsimon.llm.endpoint as endpoint_mod
from parsimon.cli import app
from parsimon.errors import LLMError
from parsimon.llm.endpoint import ensure_endpoint, is_default_endpoint
from parsimon.llm.structured import forget_endpoint_support
from tests.llm.mock_openai import MockOpenAI, Reply


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("PARSIMON_LLM_BASE_URL", raising=False)
    forget_endpoint_support()
    yield
    forget_endpoint_support()


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_default_endpoint_detection():
    assert is_default_endpoint("http://127.0.0.1:8765/v1") and is_default_endpoint("http://localhost:8765/v1/")
    assert not is_default_endpoint("http://127.0.0.1:8766/v1") and not is_default_endpoint("https://api.x.com/v1")


def test_default_endpoint_starts_the_local_model(monkeypatch):
    """Nothing answers at the default endpoint: the helper starts LocalServer (here a stand-in serving the
    mock) and stops it afterwards."""
    started, notes = [], []

    class FakeServer:
        def __init__(self, port=0, log_path=None):
            self.mock = MockOpenAI()

        def __enter__(self):
            self.mock.__enter__()
            started.append("start")
            self.base_url = self.mock.base_url
            return self

        def __exit__(self, *exc):
            self.mock.__exit__(*exc)
            started.append("stop")

    import parsimon.llm.server as server_mod

    monkeypatch.setattr(server_mod, "LocalServer", FakeServer)
    monkeypatch.setattr(endpoint_mod, "endpoint_answers", lambda url, timeout=2.0: False)
    with ensure_endpoint(notify=notes.append) as ep:
        assert ep.started_local and ep.base_url.startswith("http://127.0.0.1:") and started == ["start"]
    assert started == ["start", "stop"] and "starting the local model" in notes[0]


def test_other_endpoint_that_does_not_answer_fails_before_any_work():
    url = _closed_url()
    with pytest.raises(LLMError, match="no LLM endpoint answers"), ensure_endpoint(url):
        pass
    runner = CliRunner()
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-cta", "--n", "2", "--out", "o",
                            "--base-url", url])
    assert r.exit_code == 2 and "no LLM endpoint answers" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["games", "evolve", "--games", "kuhn_poker", "-g", "1", "--base-url", url])
    assert r.exit_code == 2 and "no LLM endpoint answers" in r.output


def test_cta_eval_whose_every_llm_call_failed_exits_nonzero(tmp_path):
    with MockOpenAI([Reply(status=400, body={"error": "model not loaded"})]) as mock:
        r = CliRunner().invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-prompted", "--n", "2",
                                     "--out", str(tmp_path / "o"), "--base-url", mock.base_url])
    assert r.exit_code == 2, r.output
    assert "every one of the" in r.output and "LLM calls failed" in r.output
    assert (tmp_path / "o" / "metrics.json").is_file()  # the results are kept; the exit says they are no result


def test_cta_eval_summary_line_shows_parse_failures_and_cap(tmp_path):
    with MockOpenAI(respond=lambda req: '{"action": {"kind": "GUESS", "label": "A"}}') as mock:
        r = CliRunner().invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-cta", "--n", "3",
                                     "--out", str(tmp_path / "o"), "--base-url", mock.base_url])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("pandora/llm-cta"))
    assert "parse_failures=0/3" in line and "max_tokens=64" in line and "output=constrained" in line
    assert "(constrained-schema 3)" in line
    with MockOpenAI(respond=lambda req: "I am not sure.") as mock:
        r = CliRunner().invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-cta", "--n", "2",
                                     "--out", str(tmp_path / "f"), "--base-url", mock.base_url, "--output", "free",
                                     "--max-tokens", "16"])
    line = next(ln for ln in r.output.splitlines() if ln.startswith("pandora/llm-cta"))
    assert "parse_failures=6/6" in line and "max_tokens=16" in line and "output=free" in line


def test_games_evolve_whose_every_llm_call_failed_exits_nonzero(tmp_path):
    with MockOpenAI([Reply(status=400, body={"error": "bad"})]) as mock:
        r = CliRunner().invoke(app, ["games", "evolve", "--games", "kuhn_poker", "-g", "1", "-n", "20", "--json",
                                     "--out", str(tmp_path / "ev"), "--base-url", mock.base_url])
    assert r.exit_code == 2, r.output
    summary = json.JSONDecoder().raw_decode(r.output[r.output.index("{"):])[0]
    assert summary["status"].startswith("failed: every one of the 2 LLM requests failed")
    assert "not a result" in r.output


def test_serve_with_a_missing_gguf_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(app, ["llm", "serve", "--model", str(tmp_path / "nope.gguf")])
    assert r.exit_code == 2 and "`--model` must be the path of a GGUF file" in r.output
