"""A scripted OpenAI-compatible upstream on loopback, for the gateway's tests, benchmark and reproduction.

It answers ``POST /v1/chat/completions`` (plain, ``stream: true`` with per-word chunks and, when asked, a
usage chunk, and ``logprobs``) and ``GET /v1/models``. What it says comes from a *responder*: ``"echo"``
(a short fixed answer, for latency), or ``"arithmetic"``, which answers questions ``What is A + B?`` /
``A * B`` correctly with a probability given per model, and reports token logprobs whose mean is higher
when the answer is right: a stand-in for a cheap model whose confidence carries signal. Usage counts are
words, so they stay below the gateway's byte bound. Failures can be scripted: the first ``fail_first``
requests answer ``fail_status``.

Run one in its own process (as the benchmark does) with
``python -m parsimon.gateway.mock --port 0 --responder echo`` (it prints ``port N`` when ready).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MockUpstream", "arithmetic_answer", "arithmetic_responder", "echo_responder"]

Responder = Callable[[dict], tuple[str, float | None]]  # body -> (text, confidence or None)
_Q = re.compile(r"(-?\d+)\s*([+*x×-])\s*(-?\d+)")


def arithmetic_answer(question: str) -> str | None:
    """The exact answer of the first ``A op B`` in ``question`` (None if there is none)."""
    m = _Q.search(question)
    if m is None:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return str(a + b if op == "+" else a - b if op == "-" else a * b)


def echo_responder(body: dict) -> tuple[str, float | None]:
    """A fixed short answer with confidence 0.99."""
    return "ok", 0.99


def arithmetic_responder(accuracy: float, *, seed: int = 0, name: str = "") -> Responder:
    """Answer arithmetic right with probability ``accuracy`` (decided per question, reproducibly).

    The reported confidence is drawn around 0.85 for a right answer and 0.45 for a wrong one (with
    overlap), so a threshold separates them imperfectly, as a real model's logprobs do.
    """

    def respond(body: dict) -> tuple[str, float | None]:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
        truth = arithmetic_answer(text)
        if truth is None:
            return "I cannot tell.", 0.3
        rng = random.Random(f"{seed}:{name}:{text}")
        right = rng.random() < accuracy
        answer = truth if right else str(int(truth) + rng.choice([-10, -2, -1, 1, 2, 10]))
        conf = min(0.99, max(0.05, rng.gauss(0.85 if right else 0.45, 0.12)))
        return answer, conf

    return respond


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


class MockUpstream:
    """The mock server on a background thread (see the module docstring).

    Args:
        responder: ``"echo"``, ``"arithmetic"`` or a callable ``body -> (text, confidence)``.
        accuracy: For ``"arithmetic"``: the share of questions answered right.
        port: TCP port on 127.0.0.1 (0: a free one).
        delay_s: Seconds to wait before answering (the model's "thinking").
        fail_first: How many first requests answer ``fail_status``.
        fail_status: The failing status code.
        chunk_delay_s: Seconds between streamed chunks.
    """

    def __init__(self, responder: str | Responder = "echo", *, accuracy: float = 1.0, port: int = 0,
                 delay_s: float = 0.0, fail_first: int = 0, fail_status: int = 503, chunk_delay_s: float = 0.0,
                 seed: int = 0, name: str = "mock"):
        if responder == "echo":
            responder = echo_responder
        elif responder == "arithmetic":
            responder = arithmetic_responder(accuracy, seed=seed, name=name)
        elif not callable(responder):
            raise ValueError(f"`responder` must be 'echo', 'arithmetic' or a callable, got {responder!r}")
        self.responder, self.name = responder, name
        self.delay_s, self.chunk_delay_s = delay_s, chunk_delay_s
        self.fail_first, self.fail_status = fail_first, fail_status
        self.requests: list[dict] = []
        self._port = port
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self):
        """The ASGI app."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response, StreamingResponse
        from starlette.routing import Route

        async def models(request: Request) -> Response:
            return Response(json.dumps({"object": "list", "data": [{"id": self.name, "object": "model"}]}),
                            media_type="application/json")

        async def chat(request: Request) -> Response:
            body = json.loads(await request.body())
            self.requests.append({"json": body, "headers": dict(request.headers), "t": time.time()})
            if len(self.requests) <= self.fail_first:
                return Response(json.dumps({"error": {"message": "scripted failure"}}), status_code=self.fail_status,
                                media_type="application/json")
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            text, conf = self.responder(body)
            words = _words(text)[: int(body.get("max_tokens") or 1 << 30)]
            text = "".join(words)
            prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 3
            usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
            base = {"id": f"chatcmpl-mock-{len(self.requests)}", "created": int(time.time()),
                    "model": body.get("model", self.name)}
            lp = None
            if body.get("logprobs") and conf is not None:
                v = math.log(conf)
                lp = {"content": [{"token": w, "logprob": v, "bytes": None, "top_logprobs": []} for w in words]}
            if not body.get("stream"):
                reply = {**base, "object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": lp,
                     "finish_reason": "stop"}]}
                return Response(json.dumps(reply), media_type="application/json")

            async def events():
                for i, w in enumerate(words):
                    delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
                    chunk = {**base, "object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                    if self.chunk_delay_s:
                        await asyncio.sleep(self.chunk_delay_s)
                end = {**base, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                yield f"data: {json.dumps(end)}\n\n".encode()
                if (body.get("stream_options") or {}).get("include_usage"):
                    yield f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/models", models, methods=["GET"]),
                                 Route("/v1/chat/completions", chat, methods=["POST"])])

    def start(self) -> MockUpstream:
        import uvicorn

        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self._port, log_level="error",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"mock-upstream-{self.name}")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the mock upstream did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    """``python -m parsimon.gateway.mock``: serve until killed; print ``port N`` when ready."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one).")
    ap.add_argument("--responder", default="echo", choices=["echo", "arithmetic"], help="What it answers.")
    ap.add_argument("--accuracy", type=float, default=1.0, help="arithmetic: share answered right.")
    ap.add_argument("--delay", type=float, default=0.0, help="Seconds before each answer.")
    ap.add_argument("--name", default="mock", help="Model name (also seeds the arithmetic responder).")
    args = ap.parse_args()
    mock = MockUpstream(args.responder, accuracy=args.accuracy, port=args.port, delay_s=args.delay,
                        name=args.name).start()
    print(f"port {mock.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        mock.stop()


if __name__ == "__main__":
    main()
