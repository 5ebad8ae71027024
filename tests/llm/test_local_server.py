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


def test_serve_command_stops_its_model_server_on_sigterm():
    """`parsimon llm serve` started in the background must take its llama.cpp child down on a plain kill."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    proc = subprocess.Popen([sys.executable, "-m", "parsimon.cli", "llm", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        while not is_serving(base):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped" in out
        assert not is_serving(base)  # the llama.cpp child is gone too
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.llm
def test_the_server_does_not_outlive_a_killed_parent():
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("from parsimon.llm import LocalServer; s = LocalServer(port=0).start(); print(s.proc.pid, flush=True); "
            "import time; time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server = int(parent.stdout.readline())
    os.kill(server, 0)  # it runs
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(40):
        time.sleep(0.25)
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
    os.kill(server, signal.SIGKILL)
    raise AssertionError("the local model server outlived its SIGKILLed parent")


def test_a_taken_port_is_refused_before_anything_starts(monkeypatch):
    """Something already listens on the port: start() says so in one line instead of taking the other
    server's answer to its readiness probe for its own."""
    import socket

    from parsimon.errors import LLMError
    from parsimon.llm import server as server_mod

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    started = []
    monkeypatch.setattr(server_mod.subprocess, "Popen", lambda *a, **k: started.append(a))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = LocalServer(port=port)
        with pytest.raises(LLMError, match=f"port {port} on 127.0.0.1 is in use"):
            srv.start()
    assert started == [] and srv.proc is None
    assert not server_mod._port_in_use(port, grace=0.0)  # released: free again
