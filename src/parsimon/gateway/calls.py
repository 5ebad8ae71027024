"""Who is calling, what a call may cost at most, the calls in flight, and the gateway's HTTP errors.

The pre-execution estimate must be an upper bound, or concurrent calls could together pass the hard
limit: a tokenizer's token covers at least one byte of text, so the prompt's UTF-8 bytes plus a per-message
and a fixed allowance for the chat template's special tokens bound the prompt tokens, and ``max_tokens``
(which the gateway always sends upstream) bounds the completion.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GatewayError", "LiveCall", "Principal", "completion_limit", "prompt_bytes_bound", "prompt_estimate"]

MESSAGE_OVERHEAD = 8  # role and separators of one message, in tokens
TEMPLATE_OVERHEAD = 64  # a chat template's fixed text (e.g. a default system prompt), in tokens


class GatewayError(Exception):
    """A refusal with its HTTP status, OpenAI-style error ``type``, and extra fields for the body."""

    def __init__(self, status: int, type_: str, message: str, *, extra: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.extra, self.headers = extra or {}, headers or {}

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "code", ...}}`` as OpenAI clients expect."""
        return {"error": {"message": self.message, "type": self.type, "code": self.type, "param": None,
                          **self.extra}}


@dataclass(frozen=True)
class Principal:
    """The caller of one request: its key, and the workflow, run and component its costs go to."""

    key: str | None  # the key's name (None: anonymous)
    workflow: str
    run: str
    component: str
    request_id: str | None = None  # the client's idempotency key (X-Parsimon-Request-Id)
    rate_per_s: float | None = None
    burst: float | None = None
    models: tuple[str, ...] | None = None

    @property
    def actor(self) -> str:
        """Who acted, as the proof-of-action log names it."""
        return f"key:{self.key}" if self.key else "anonymous"


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def prompt_bytes_bound(body: dict) -> int:
    """An upper bound of the prompt's tokens (see the module docstring)."""
    messages = body.get("messages") or []
    n = TEMPLATE_OVERHEAD
    for m in messages:
        if isinstance(m, dict):
            n += MESSAGE_OVERHEAD + len(_content_text(m.get("content")).encode("utf-8"))
            for k in ("tool_calls", "name", "tool_call_id"):
                if k in m:
                    n += len(_content_text(m[k]).encode("utf-8"))
    for k in ("tools", "functions", "response_format"):
        if body.get(k) is not None:
            n += len(_content_text(body[k]).encode("utf-8"))
    return n


def prompt_estimate(body: dict) -> int:
    """A typical prompt token count (four characters a token) for calls whose upstream reports none."""
    messages = body.get("messages") or []
    chars = sum(len(_content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    return chars // 4 + MESSAGE_OVERHEAD * len(messages)


def completion_limit(body: dict, default: int) -> int:
    """``max_completion_tokens`` or ``max_tokens`` of the request, else ``default``."""
    for k in ("max_completion_tokens", "max_tokens"):
        v = body.get(k)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GatewayError(400, "invalid_request_error", f"`{k}` must be a positive integer, got {v!r}")
            return v
    return default


@dataclass
class LiveCall:
    """A call in flight (shown on the dashboard; cancelled when its scope is killed)."""

    kind: str  # "model" or "tool"
    name: str
    principal: Principal
    reserved_money: float = 0.0
    reserved_tokens: int = 0
    tokens_out: int = 0  # counted as a stream flows
    stream: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.time)
    cancelled: str | None = None  # why it was cancelled (a kill switch)
    task: Any = None

    def as_dict(self) -> dict[str, Any]:
        p = self.principal
        return {"id": self.id, "kind": self.kind, "name": self.name, "key": p.key, "run": p.run,
                "workflow": p.workflow, "component": p.component, "started": self.started,
                "seconds": round(time.time() - self.started, 3), "stream": self.stream,
                "tokens_out": self.tokens_out, "reserved_money": self.reserved_money,
                "reserved_tokens": self.reserved_tokens, "cancelled": self.cancelled}
