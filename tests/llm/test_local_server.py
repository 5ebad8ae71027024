from __future__ import annotations

import pytest

from parsimon.llm import ChatClient, LocalServer, is_serving

pytestmark = pytest.mark.llm


def test_real_local_model_serves_and_stops(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    log = tmp_path / "server.log"
    srv = LocalServer(port=0, log_path=log)
    with srv:
        assert is_serving(srv.base_url)
        client = ChatClient(base_url=srv.base_url)
        reply = client.chat(
            [{"role": "user", "content": "What is the capital of France? Answer in one word."}], max_tokens=16
        )
        assert isinstance(reply.text, str) and reply.text.strip()
        assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
        assert reply.finish_reason in ("stop", "length")
        client.close()
        proc = srv.proc
    assert srv.proc is None and proc.returncode is not None  # the child was reaped
    assert not is_serving(srv.base_url)
