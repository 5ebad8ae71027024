"""A scripted OpenAI-compatible server on 127.0.0.1 for client tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | None = None  # dict → JSON; None → a valid completion
    delay: float = 0.0
    headers: dict = field(default_factory=dict)


def completion(text="hello", prompt_tokens=11, completion_tokens=3, model="mock-model"):
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def request_form(body: dict) -> str:
    """How a request asks for structure: json_schema, json_object, grammar or plain."""
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return "json_schema"
    if rf.get("type") == "json_object":
        return "json_object"
    return "grammar" if "grammar" in body else "plain"


_FIELD = {"json_schema": "response_format.type", "json_object": "response_format.schema", "grammar": "grammar"}


class MockOpenAI:
    """Serves replies from a script (the last one repeats), or from ``respond(request_json) -> text``; records
    every request. With ``accepts`` (a set of request forms, see :func:`request_form`), a request in another
    structured form is refused with HTTP ``refusal_status`` naming the field, as OpenAI (400) and
    llama-cpp-python (500) refuse what they do not take; refused requests are recorded with ``refused``."""

    def __init__(self, script: list[Reply] | None = None, *, accepts: set[str] | None = None,
                 respond=None, refusal_status: int = 400):
        self.script = list(script or [Reply()])
        self.requests: list[dict] = []
        self.accepts, self.respond, self.refusal_status = accepts, respond, refusal_status
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                body = json.dumps({"data": [{"id": "mock-model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n)
                req = json.loads(raw)
                form = request_form(req)
                refused = mock.accepts is not None and form != "plain" and form not in mock.accepts
                mock.requests.append({"path": self.path, "headers": dict(self.headers), "json": req,
                                      "form": form, "refused": refused})
                if refused:
                    reply = Reply(status=mock.refusal_status, body={"error": {
                        "message": f"Unrecognized request argument supplied: {_FIELD[form]}"}})
                elif mock.respond is not None:
                    reply = Reply(body=completion(mock.respond(req)))
                else:
                    served = [r for r in mock.requests if not r["refused"]]
                    reply = mock.script[min(len(served) - 1, len(mock.script) - 1)]
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if reply.body is not None else completion()
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class TrickleServer:
    """Answers ``GET`` at once (so it looks alive) and a ``POST`` with a valid-looking HTTP reply sent one byte
    every ``interval`` seconds, for at most ``max_bytes`` bytes (then closes): a server that never lets a
    per-read timeout fire."""

    def __init__(self, interval: float = 1.0, max_bytes: int = 12):
        import socket

        self.interval, self.max_bytes = interval, max_bytes
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n" + b"{" * 200
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(conn, reply), daemon=True).start()

    def _trickle(self, conn, reply):
        with conn:
            try:
                if conn.recv(65536).startswith(b"GET"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                                 b"Connection: close\r\n\r\n{\"data\": []}")
                    return
                for b in reply[: self.max_bytes]:
                    if self.stop.is_set():
                        return
                    conn.sendall(bytes([b]))
                    time.sleep(self.interval)
            except OSError:
                pass

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
