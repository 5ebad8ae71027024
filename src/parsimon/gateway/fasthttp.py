"""A lean keep-alive HTTP/1.1 POST for plain-``http://`` upstreams: asyncio streams and httptools' parser.

Why: on a loopback upstream, one non-streaming call through ``httpx.AsyncHTTPTransport`` costs about
0.5 ms of CPU (its httpcore pool, anyio cancel scopes, h11 events and model objects), a quarter of the
gateway's 2 ms budget for added latency; the same exchange over an asyncio stream costs about 0.03 ms
(548 vs 27 us of CPU per request, measured on the project's 2-core machine with the mock upstream).
So non-streaming calls to ``http://`` upstreams take this path; ``https://`` upstreams and every streaming
call use httpx. The response is parsed by ``httptools`` (the parser uvicorn uses), which handles
``Content-Length``, chunked bodies and keep-alive; failures raise the same httpx exception types the
routing layer already retries on.

Idle connections are dropped after ``idle_s`` seconds (below uvicorn's 5 s keep-alive timeout, which the
llama.cpp server and most Python servers use). A request on a reused idle connection that the server had
closed anyway (no byte of the answer arrived) is sent again on the next idle or a fresh connection, as HTTP
clients do for idle keep-alive connections.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx

__all__ = ["FastPool", "available"]


def available() -> bool:
    """Whether httptools is installed (it ships with the gateway extra)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


class _Response:
    """Parser callbacks collecting one response."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False
        self.started = False
        self.keep_alive = False
        self.parser = None

    def on_message_begin(self) -> None:
        self.started = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        # llhttp answers should_keep_alive() only while the message is current
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.done = True


class FastPool:
    """Idle keep-alive connections to one ``http://host:port`` (see the module docstring).

    Args:
        base_url: The upstream's base URL (``http://...``); requests go to paths under it.
        timeout: Seconds for one whole exchange (connect, send, receive).
        max_idle: Idle connections kept for reuse.
        idle_s: Seconds an idle connection is kept.
    """

    def __init__(self, base_url: str, *, timeout: float, max_idle: int = 64, idle_s: float = 4.0):
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"`base_url` must be http://, got {base_url!r}")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout, self.max_idle, self.idle_s = timeout, max_idle, idle_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._host_header = f"{self.host}:{self.port}".encode()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()

    async def _connect(self):
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc

    async def post(self, path: str, body: bytes, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        """POST ``body`` to ``<base path><path>``; return ``(status, response body)``."""
        head = [f"POST {self.prefix}{path} HTTP/1.1".encode(), b"Host: " + self._host_header,
                b"Content-Length: " + str(len(body)).encode()]
        head += [f"{k}: {v}".encode("latin-1") for k, v in headers]
        request = b"\r\n".join(head) + b"\r\n\r\n" + body
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer from {self.host}:{self.port} in {self.timeout} s") from None

    def _take_idle(self):
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self.idle_s and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        import httptools

        while True:
            idle = self._take_idle()
            reused = idle is not None
            reader, writer = idle if reused else await self._connect()
            response = _Response()
            parser = response.parser = httptools.HttpResponseParser(response)
            try:
                writer.write(request)
                while not response.done:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionResetError("the server closed the connection")
                    parser.feed_data(data)
            except httptools.HttpParserError as exc:
                writer.close()
                raise httpx.RemoteProtocolError(f"malformed answer from {self.host}:{self.port}: {exc}") from exc
            except OSError as exc:
                writer.close()
                if reused and not response.started:
                    continue  # an idle connection the server had dropped: try the next one, then a fresh one
                raise httpx.ReadError(f"{self.host}:{self.port}: {exc}") from exc
            except BaseException:
                writer.close()
                raise
            if response.keep_alive and len(self._idle) < self.max_idle:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return parser.get_status_code(), b"".join(response.body)
