"""One behaviour when no model server answers, for every command that talks to a model.

:func:`ensure_endpoint` is used by ``parsimon llm chat``, ``parsimon cta eval --policy llm-*`` and
``parsimon games evolve`` (the LLM mutator):

* the endpoint answers → use it;
* it is the default local endpoint (``http://127.0.0.1:8765/v1``, nothing configured) and nothing answers
  → start the embedded local model (SmolLM2-135M, :class:`~parsimon.llm.LocalServer`) on a free port for
  the duration of the command, and say so on stderr;
* any other endpoint that does not answer → :class:`~parsimon.errors.LLMError` (one line, exit 2 on the
  command line), before any work is done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from parsimon.errors import LLMError
from parsimon.llm.config import DEFAULT_BASE_URL, DEFAULT_PORT, LLMConfig

__all__ = ["Endpoint", "endpoint_answers", "ensure_endpoint", "is_default_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """The endpoint a command talks to: ``base_url``, ``model``, and whether the local model was started."""

    base_url: str
    model: str
    started_local: bool = False


def is_default_endpoint(base_url: str) -> bool:
    """True for the default local endpoint (``127.0.0.1`` or ``localhost`` on port 8765, path ``/v1``)."""
    parts = urlsplit(base_url)
    return (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
            and (parts.port or 80) == DEFAULT_PORT and parts.path.rstrip("/") == "/v1")


def endpoint_answers(base_url: str, timeout: float = 2.0) -> bool:
    """True when anything answers HTTP at ``base_url`` (any status: an endpoint that wants a key answers 401)."""
    from parsimon.llm.transport import deadline_scope, deadline_transport

    try:
        with httpx.Client(transport=deadline_transport(), timeout=timeout) as http, deadline_scope(timeout):
            http.get(f"{base_url.rstrip('/')}/models")
        return True
    except httpx.HTTPError:
        return False


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def ensure_endpoint(base_url: str | None = None, model: str | None = None, *, autostart: bool = True,
                    log_path: str | Path | None = None,
                    notify: Callable[[str], None] = _stderr) -> Iterator[Endpoint]:
    """Yield an :class:`Endpoint` that answers, starting the local model if the default one does not.

    Args:
        base_url / model: as for :class:`~parsimon.llm.ChatClient` (arguments, then ``PARSIMON_LLM_*``, then
            the local defaults).
        autostart: start the embedded local model when the default endpoint does not answer.
        log_path: the started server's log file (default: discarded).
        notify: where the one-line notice about starting the local model goes (default: stderr).

    Raises:
        LLMError: the endpoint does not answer and is not the default one (or ``autostart`` is False).
        DependencyNotInstalled: the local model is needed but the ``llm`` extra is not installed.
    """
    cfg = LLMConfig.resolve(base_url, model)
    if endpoint_answers(cfg.base_url):
        yield Endpoint(cfg.base_url, cfg.model)
        return
    if not (autostart and is_default_endpoint(cfg.base_url)):
        parts = urlsplit(cfg.base_url)
        hint = "check --base-url / PARSIMON_LLM_BASE_URL"
        if parts.hostname in ("127.0.0.1", "localhost"):
            port = "" if parts.port in (None, DEFAULT_PORT) else f" --port {parts.port}"
            hint = f"start a local model there with `parsimon llm serve{port}`, or {hint}"
        raise LLMError(f"no LLM endpoint answers at {cfg.base_url}; {hint}")
    from parsimon.llm.server import LocalServer

    notify(f"no model server answers at {DEFAULT_BASE_URL}; starting the local model for this command")
    with LocalServer(port=0, log_path=log_path) as server:
        yield Endpoint(server.base_url, cfg.model, started_local=True)
