"""The lean upstream POST: keep-alive reuse, idle connections the server dropped, chunked answers, errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from parsimon.gateway.fasthttp import FastPool, available
from parsimon.gateway.mock import MockUpstream

pytestmark = pytest.mark.skipif(not available(), reason="httptools is part of the gateway extra")
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
HEADERS = [("content-type", "application/json")]


async def _raw_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_keep_alive_reuse_and_a_dropped_idle_connection():
    with MockUpstream("echo") as up:
        async def go():
            pool = FastPool(up.base_url, timeout=5)
            for _ in range(3):
                status, body = await pool.post("/chat/completions", BODY, HEADERS)
                assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "ok"
            assert len(pool._idle) == 1
            pool._idle[0][1].close()  # the server side would time it out the same way
            await asyncio.sleep(0.05)
            status, _ = await pool.post("/chat/completions", BODY, HEADERS)
            assert status == 200
            await pool.aclose()

        asyncio.run(go())
        assert len(up.requests) == 4


def test_chunked_answer_and_connection_close():
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(len(BODY))
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     b"5\r\nbusy!\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def go():
        server, port = await _raw_server(handler)
        pool = FastPool(f"http://127.0.0.1:{port}/v1", timeout=5)
        status, body = await pool.post("/chat/completions", BODY, HEADERS)
        assert (status, body) == (503, b"busy!") and pool._idle == []
        server.close()

    asyncio.run(go())


def test_errors_map_to_httpx_exceptions():
    async def silent(reader, writer):
        await asyncio.sleep(2)

    async def garbage(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async def go():
        s1, p1 = await _raw_server(silent)
        with pytest.raises(httpx.ReadTimeout):
            await FastPool(f"http://127.0.0.1:{p1}", timeout=0.2).post("/x", BODY, HEADERS)
        s2, p2 = await _raw_server(garbage)
        with pytest.raises(httpx.RemoteProtocolError):
            await FastPool(f"http://127.0.0.1:{p2}", timeout=2).post("/x", BODY, HEADERS)
        s1.close()
        s2.close()
        port = p1
        with pytest.raises(httpx.ConnectError):
            await FastPool(f"http://127.0.0.1:{port}", timeout=2).post("/x", BODY, HEADERS)

    asyncio.run(go())
    with pytest.raises(ValueError):
        FastPool("https://example.org", timeout=1)
