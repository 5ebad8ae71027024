"""The ``guiowl`` policy: GUI-Owl-1.5 (or any model trained on its protocol) over an OpenAI-compatible endpoint.

Each step builds the official messages (:func:`~parsimon.gui.prompt.build_messages`: system prompt with
the platform's tool and any MCP tools, instruction turn, screenshot history window), sends them through
:class:`parsimon.llm.ChatClient` (which charges the tokens to the ledger), and parses the reply
(:func:`~parsimon.gui.reply.parse_reply`). A reply that cannot be read or breaks the schema becomes an
invalid decision carrying the error; the next step asks again. On the ``browser`` platform the
screenshot carries Set-of-Marks boxes and the observation text lists the labelled elements, as the
official browser client does. A call to an MCP tool is executed through ``mcp_call`` and its result is
shown to the model in the next turn inside ``<tool_response>``; the environment does not move.

Serve GUI-Owl without a tool-call parser (plain ``vllm serve ... --served-model-name gui-owl``): the
client reads ``<tool_call>`` from the message content itself, as the official clients do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError, InvalidAction, MalformedReply
from parsimon.gui.policies.base import POLICIES, Decision, Policy
from parsimon.gui.prompt import PromptConfig, Turn, build_messages
from parsimon.gui.reply import parse_reply

__all__ = ["GUIOwlConfig", "GUIOwlPolicy"]


@dataclass(frozen=True)
class GUIOwlConfig:
    """Settings of the GUI-Owl policy (defaults: the official clients)."""

    platform: str | None = None  # computer | mobile | browser; None: the task's own
    history_n: int = 4  # screenshot turns kept (computer/mobile scripts)
    temperature: float = 0.0  # official clients call at temperature 0
    max_tokens: int = 512  # room for a thought and the tool call
    image_factor: int = 16  # smart_resize factor
    send_images: bool = True
    strict: bool = False  # refuse the official clients' parsing fallbacks

    def __post_init__(self) -> None:
        if self.platform not in (None, "computer", "mobile", "browser"):
            raise ConfigError(f"`platform` must be computer, mobile, browser or None, got {self.platform!r}")
        if self.max_tokens < 1:
            raise ConfigError(f"`max_tokens` must be >= 1, got {self.max_tokens}")


class GUIOwlPolicy(Policy):
    """See the module docstring.

    Args:
        client: A :class:`parsimon.llm.ChatClient` (or anything with its ``chat``); built from
            ``base_url``/``model``/``api_key`` when None.
        config: :class:`GUIOwlConfig`.
        mcp_tools: MCP tool schemas to declare.
        mcp_call: ``mcp_call(name, arguments) -> str`` runs a declared MCP tool.
    """

    name = "guiowl"
    needs_llm = True

    def __init__(self, client: Any = None, *, config: GUIOwlConfig | None = None, base_url: str | None = None,
                 model: str | None = None, api_key: str | None = None, mcp_tools: list[dict] | tuple = (),
                 mcp_call: Callable[[str, dict], str] | None = None) -> None:
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(base_url=base_url, model=model, api_key=api_key, component="gui.guiowl")
        if mcp_tools and mcp_call is None:
            raise ConfigError("`mcp_tools` were given without `mcp_call` to run them")
        self.client, self.config = client, config or GUIOwlConfig()
        self.mcp_tools, self.mcp_call = list(mcp_tools), mcp_call
        self.history: list[Turn] = []
        self.platform = self.config.platform or "browser"
        self._pending_tool: str | None = None

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        self.history, self._pending_tool = [], None
        self.platform = self.config.platform or info.get("platform", "browser")

    def messages(self, obs: Any) -> list[dict]:
        """The messages this step sends (for inspection and tests)."""
        cfg = PromptConfig(self.platform, history_n=self.config.history_n, image_factor=self.config.image_factor,
                           send_images=self.config.send_images)
        screen, text = self._screen(obs)
        history = list(self.history)
        if self._pending_tool is not None and history:
            history[-1] = Turn(history[-1].output, history[-1].screenshot, history[-1].observation,
                               self._pending_tool)
        return build_messages(obs.goal, screen, history, config=cfg, mcp_tools=self.mcp_tools, observation=text)

    def _screen(self, obs: Any) -> tuple[bytes | None, str | None]:
        if self.platform == "browser":
            return (obs.som_image() if obs.screenshot else None), obs.som_text()
        return (obs.screenshot or None), None

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        messages = self.messages(obs)
        resp = self.client.chat(messages, temperature=self.config.temperature, max_tokens=self.config.max_tokens)
        reasoning = None
        try:
            reasoning = resp.raw["choices"][0]["message"].get("reasoning_content")
        except (AttributeError, KeyError, IndexError, TypeError):
            pass
        tokens = resp.usage.prompt_tokens + resp.usage.completion_tokens
        screen, text = self._screen(obs)
        self.history.append(Turn(resp.text, screen, text))
        self._pending_tool = None
        try:
            reply = parse_reply(resp.text, self.platform, mcp_tools=self.mcp_tools, reasoning=reasoning,
                                strict=self.config.strict)
        except (MalformedReply, InvalidAction) as exc:
            return Decision(None, resp.text, error=str(exc), tokens=tokens)
        meta = {"warnings": list(reply.warnings), "action_text": reply.action_text}
        if reply.mcp_call is not None:
            result = self.mcp_call(reply.mcp_call.name, reply.mcp_call.arguments)
            self._pending_tool = result if isinstance(result, str) else json.dumps(result)
            meta["tool_result"] = self._pending_tool[:2000]
            return Decision(None, resp.text, thought=reply.thought, tokens=tokens,
                            mcp_call={"name": reply.mcp_call.name, "arguments": reply.mcp_call.arguments}, meta=meta)
        return Decision(reply.action, resp.text, thought=reply.thought, tokens=tokens, meta=meta)

    def close(self) -> None:  # noqa: D102
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


POLICIES.register("guiowl", GUIOwlPolicy, describe="GUI-Owl-1.5's protocol over an OpenAI-compatible endpoint")
