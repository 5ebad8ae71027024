"""The policy as judge: CUWM's selection prompt, answered as JSON ``{"action_idx", "thought"}``.

CUWM's frozen agent sees the current screen and each option with its predicted next state (text and/or
image), is told the predictions "may not be fully accurate" and may be ignored, and picks one. The
request here carries a JSON schema as ``response_format`` (``action_idx`` an integer enum of the option
numbers), so the reply always names an option; images go as data URLs for a vision endpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from parsimon.errors import MalformedReply

__all__ = ["SYSTEM", "Judge", "judge_messages", "judge_schema"]

SYSTEM = ("You are a GUI agent choosing the next action for a task. You are given the current page and a list of "
          "candidate actions. For some candidates a world model predicted what the page would look like after the "
          "action. These predictions may not be fully accurate; use them when they help, and you may ignore them. "
          "Choose the candidate most likely to make progress on the task. Answer with JSON only: "
          '{"action_idx": <number>, "thought": "<one sentence>"}.')


def judge_schema(n: int) -> dict[str, Any]:
    """The ``response_format`` constraining the reply to one of ``n`` options."""
    return {"type": "json_object",
            "schema": {"type": "object",
                       "properties": {"action_idx": {"type": "integer", "enum": list(range(n))},
                                      "thought": {"type": "string", "maxLength": 200}},
                       "required": ["action_idx", "thought"], "additionalProperties": False}}


def judge_messages(goal: str, page: str, options: list[dict[str, Any]], *, images: bool = False,
                   screenshot: bytes | None = None) -> list[dict[str, Any]]:
    """The chat messages of one selection.

    Args:
        goal: The instruction.
        page: The current page as text (the accessibility tree).
        options: One dict per candidate: ``action`` (text), and optionally ``predicted_state_text`` and
            ``predicted_state_image`` (PNG bytes).
        images: Attach the images (a vision endpoint); otherwise only text goes.
        screenshot: The current screenshot (attached with ``images``).
    """
    lines = [f"Task: {goal}", "", "Current page:", page[:3000], "", "Options:"]
    parts: list[dict[str, Any]] = []
    for i, opt in enumerate(options):
        lines.append(f"[{i}] {opt['action']}")
        if opt.get("predicted_state_text"):
            lines.append(f"    predicted_state_text: {opt['predicted_state_text'][:600]}")
    lines.append("")
    lines.append('Answer as {"action_idx": <option number>, "thought": "..."}.')
    text = "\n".join(lines)
    if not images:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    parts.append({"type": "text", "text": text})
    if screenshot:
        parts.append({"type": "text", "text": "Current screen:"})
        parts.append({"type": "image_url", "image_url": {"url": _data_url(screenshot)}})
    for i, opt in enumerate(options):
        if opt.get("predicted_state_image"):
            parts.append({"type": "text", "text": f"predicted_state_image of option [{i}]:"})
            parts.append({"type": "image_url", "image_url": {"url": _data_url(opt["predicted_state_image"])}})
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": parts}]


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Judge:
    """Ask a chat model (a :class:`parsimon.llm.ChatClient`) to pick among the options.

    Args:
        client: The chat client (the local model by default).
        images: Send the images (a vision endpoint).
        max_tokens: Reply length limit.
    """

    def __init__(self, client: Any = None, *, images: bool = False, max_tokens: int = 96) -> None:
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(component="gui.world_model.judge")
        self.client, self.images, self.max_tokens = client, images, max_tokens
        self.tokens = 0

    def choose(self, goal: str, page: str, options: list[dict[str, Any]], screenshot: bytes | None = None) -> tuple[int, str]:
        """The chosen option's index and the model's thought.

        Raises:
            MalformedReply: the reply is not JSON naming an existing option.
        """
        msgs = judge_messages(goal, page, options, images=self.images, screenshot=screenshot)
        resp = self.client.chat(msgs, temperature=0.0, max_tokens=self.max_tokens,
                                response_format=judge_schema(len(options)))
        self.tokens += resp.usage.prompt_tokens + resp.usage.completion_tokens
        try:
            data = json.loads(resp.text)
            idx = int(data["action_idx"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedReply(f"the judge's reply is not {{'action_idx': n}}: {resp.text[:200]!r}") from exc
        if not 0 <= idx < len(options):
            raise MalformedReply(f"the judge chose option {idx}, but there are {len(options)}")
        return idx, str(data.get("thought", ""))

    def close(self) -> None:
        """Close the client."""
        close = getattr(self.client, "close", None)
        if callable(close):
            close()
