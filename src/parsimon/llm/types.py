"""Plain data types of the chat client; no network code here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Usage", "ChatResponse", "ChatModel"]


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion, as the endpoint reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResponse:
    """One chat completion (with structured output: every completion the call needed, summed).

    Attributes:
        text: the assistant message's content ("" if the model returned none); the last one after a re-ask.
        finish_reason: "stop", "length", ... as the endpoint reported it.
        usage: token counts (summed over a re-ask).
        cost: money charged for this call, from the configured prices per 1K tokens.
        latency_s: wall time of the successful attempts, in seconds.
        model: the model name the endpoint reported.
        attempts: how many HTTP attempts this call took (1 = no retry, no re-ask).
        raw: the decoded JSON reply (the last one).
        mode: ``constrained-schema``, ``constrained-grammar``, ``fallback`` or ``free`` (no structure asked).
        parsed: the validated JSON value of a structured reply, or None.
        parse_error: why ``parsed`` is None for a structured call ("" otherwise).
        reasks: how many times the reply was asked for again after it did not validate (0 or 1).
        requests: completions this call made (1, or 2 after a re-ask).
        usage_estimated: the endpoint reported no plausible token counts; ``usage`` is an estimate from the
            text (the ledger event says so and keeps the reported values).
    """

    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency_s: float = 0.0
    model: str = ""
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict)
    mode: str = "free"
    parsed: Any = None
    parse_error: str = ""
    reasks: int = 0
    requests: int = 1
    usage_estimated: bool = False


class ChatModel(Protocol):
    """Anything agents can talk to: the real :class:`~parsimon.llm.ChatClient` or a scripted fake."""

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> ChatResponse: ...
