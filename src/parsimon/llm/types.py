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
    """One chat completion.

    Attributes:
        text: the assistant message's content ("" if the model returned none).
        finish_reason: "stop", "length", ... as the endpoint reported it.
        usage: token counts.
        cost: money charged for this call, from the configured prices per 1K tokens.
        latency_s: wall time of the successful attempt, in seconds.
        model: the model name the endpoint reported.
        attempts: how many HTTP attempts this call took (1 = no retry).
        raw: the decoded JSON reply.
    """

    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency_s: float = 0.0
    model: str = ""
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict)


class ChatModel(Protocol):
    """Anything agents can talk to: the real :class:`~parsimon.llm.ChatClient` or a scripted fake."""

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> ChatResponse: ...
