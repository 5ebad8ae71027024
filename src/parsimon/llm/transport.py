"""An HTTP transport whose every socket operation respects a wall-clock deadline.

httpx's timeouts bound each socket operation, not a whole request: a server that sends one byte a second
keeps a request alive for ever. :func:`deadline_scope` sets a deadline for the requests made inside it;
the transport from :func:`deadline_transport` clamps every connect, read and write to the time left and
raises a timeout once it has passed, so a request never outlives its deadline by more than one operation
already in flight (itself bounded by the time that was left).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

__all__ = ["deadline_scope", "deadline_transport"]

_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("parsimon_llm_deadline",
                                                                                        default=None)


@contextmanager
def deadline_scope(seconds: float) -> Iterator[None]:
    """Requests made inside end (with a timeout error) at most ``seconds`` from now."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    current = _DEADLINE.get()
    if current is None:
        return timeout
    deadline, seconds = current
    left = deadline - time.monotonic()
    if left <= 0:
        raise error(f"the request's time limit of {seconds:g} s passed")
    return left if timeout is None else min(timeout, left)


def _guarded(op: Any, timeout: float | None, error: type[Exception]) -> Any:
    """Run ``op(clamped_timeout)``; a timeout after the deadline says so."""
    try:
        return op(_clamp(timeout, error))
    except (httpcore.ReadTimeout, httpcore.WriteTimeout, httpcore.ConnectTimeout):
        _clamp(None, error)  # raises the deadline's message when the deadline is what ran out
        raise


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _guarded(lambda t: self._inner.read(max_bytes, t), timeout, httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _guarded(lambda t: self._inner.write(buffer, t), timeout, httpcore.WriteTimeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _clamp(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(_guarded(lambda t: self._inner.connect_tcp(host, port, t, local_address,
                                                                          socket_options),
                                        timeout, httpcore.ConnectTimeout))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _clamp(timeout, httpcore.ConnectTimeout),
                                                               socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's default transport with its network backend wrapped to honour :func:`deadline_scope`.

    Raises:
        RuntimeError: this httpx / httpcore version keeps its connection pool elsewhere (the deadline could
            not be enforced; tests catch this on an upgrade).
    """
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's transport has no httpcore connection pool to wrap; the per-call deadline "
                           f"needs httpx 0.28-0.29 and httpcore 1.x (found httpx {httpx.__version__})")
    pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport
