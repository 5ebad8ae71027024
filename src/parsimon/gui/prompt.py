"""GUI-Owl's chat messages: the system prompt, the instruction turn, the screenshot history window.

The layout follows the official clients (Mobile-Agent-v3.5 ``computer_use`` / ``mobile_use``
``build_messages``): the system prompt of :func:`~parsimon.gui.tools.system_prompt`; a first user turn
"Please generate the next move according to the UI screenshot, instruction and previous actions." with
the instruction, the "Previous actions:" (``Step i: <Action line>`` for the steps older than the window,
or ``None``) and a screenshot; then, for each of the last ``history_n`` steps, the assistant's reply and
the next screenshot as a user turn. ``browser`` uses the browser client's layout instead: the instruction
turn carries every earlier step's Action line, the screenshot and the Set-of-Marks text
``observation:<items>``; the last reply and the new screenshot follow.

When a step called an MCP tool, the next user turn wraps its result and the screenshot in
``<tool_response>\\n ... \\n</tool_response>`` (the OSWorld-MCP client's format). Screenshots are sent as
PNG data URLs after :func:`~parsimon.gui.coords.smart_resize`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from parsimon.errors import ConfigError
from parsimon.gui.coords import resize_for_model
from parsimon.gui.tools import system_prompt

__all__ = ["INSTRUCTION_TEMPLATE", "PromptConfig", "Turn", "action_line", "build_messages", "image_part"]

INSTRUCTION_TEMPLATE = ("Please generate the next move according to the UI screenshot, instruction and previous "
                        "actions.\n\nInstruction: {instruction}\n\nPrevious actions:\n{previous}")


@dataclass(frozen=True)
class PromptConfig:
    """How the messages are built (defaults: the official clients)."""

    platform: str = "computer"  # computer | mobile | browser
    history_n: int = 4  # screenshot turns kept (4 in the PC/mobile scripts, 5 in the cookbook)
    image_factor: int = 16  # smart_resize factor (16 desktop client, 28 mobile client)
    send_images: bool = True  # False: text-only messages (observation text only)
    date_line: str | None = None  # mobile client prefixes "Today's date is: YYYY-MM-DD Weekday."

    def __post_init__(self) -> None:
        if self.platform not in ("computer", "mobile", "browser"):
            raise ConfigError(f"`platform` must be computer, mobile or browser, got {self.platform!r}")
        if self.history_n < 0:
            raise ConfigError(f"`history_n` must be >= 0, got {self.history_n}")
        if self.image_factor < 1:
            raise ConfigError(f"`image_factor` must be >= 1, got {self.image_factor}")


@dataclass(frozen=True)
class Turn:
    """One earlier step: the model's reply, the screenshot it answered, and an MCP tool's result if it
    called one (shown in the next user turn)."""

    output: str
    screenshot: bytes | None = None
    observation: str | None = None  # browser: the Set-of-Marks text of that screenshot
    tool_response: str | None = None


def action_line(output: str) -> str:
    """The text between ``Action:`` and ``<tool_call>`` of a reply (the whole reply if it has neither)."""
    text = output.split("</think>")[-1]
    if "Action:" in text and "<tool_call>" in text:
        return text.split("Action:", 1)[1].split("<tool_call>", 1)[0].strip()
    return text.strip()


def image_part(png: bytes, factor: int = 16) -> dict:
    """An OpenAI ``image_url`` content part holding the PNG resized for the model."""
    data = base64.b64encode(resize_for_model(png, factor=factor)).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def _text(t: str) -> dict:
    return {"type": "text", "text": t}


def _screen(png: bytes | None, cfg: PromptConfig, observation: str | None = None,
            tool_response: str | None = None) -> list[dict]:
    parts: list[dict] = []
    if tool_response is not None:
        parts.append(_text("<tool_response>\n"))
        parts.append(_text(tool_response))
    if png is not None and cfg.send_images:
        parts.append(image_part(png, cfg.image_factor))
    if observation is not None:
        parts.append(_text(f"observation:{observation}"))
    if tool_response is not None:
        parts.append(_text("\n</tool_response>"))
    return parts


def build_messages(instruction: str, screenshot: bytes | None, history: Sequence[Turn] = (), *,
                   config: PromptConfig | None = None, mcp_tools: Sequence[dict] = (),
                   observation: str | None = None) -> list[dict]:
    """The chat messages for the next step.

    Args:
        instruction: The task.
        screenshot: The current screen (PNG), or None for text-only.
        history: Earlier steps, oldest first.
        config: Platform, history window, image settings.
        mcp_tools: MCP tool schemas appended to ``<tools>``.
        observation: The current Set-of-Marks text (``browser``; optional elsewhere).
    """
    cfg = config or PromptConfig()
    if not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError("`instruction` must be a non-empty string")
    system = {"role": "system", "content": [_text(system_prompt(cfg.platform, list(mcp_tools)))]}
    history = list(history)
    task = (cfg.date_line or "") + instruction
    last_tool = history[-1].tool_response if history else None
    if cfg.platform == "browser":
        return _browser_messages(system, task, screenshot, history, cfg, observation, last_tool)
    start = max(0, len(history) - cfg.history_n) if cfg.history_n else len(history)
    previous = "\n".join(f"Step {i + 1}: {action_line(t.output)}" for i, t in enumerate(history[:start])) or "None"
    intro = _text(INSTRUCTION_TEMPLATE.format(instruction=task, previous=previous))
    window = history[start:]
    messages = [system]
    if not window:
        messages.append({"role": "user", "content": [intro, *_screen(screenshot, cfg, observation, last_tool)]})
        return messages
    for i, turn in enumerate(window):
        before = history[start + i - 1].tool_response if start + i > 0 else None
        parts = _screen(turn.screenshot, cfg, turn.observation, before)
        messages.append({"role": "user", "content": [intro, *parts] if i == 0 else parts})
        messages.append({"role": "assistant", "content": [_text(turn.output)]})
    messages.append({"role": "user", "content": _screen(screenshot, cfg, observation, last_tool)})
    return messages


def _browser_messages(system: dict, task: str, screenshot: bytes | None, history: list[Turn],
                      cfg: PromptConfig, observation: str | None, last_tool: str | None) -> list[dict]:
    steps = "".join(f"\nStep{i + 1}: {action_line(t.output)}" for i, t in enumerate(history[:-1]))
    intro = _text("Please generate the next move according to the UI screenshot, instruction and previous "
                  f"actions.\n\nInstruction: {task}\n\nPrevious actions:{steps}")
    if not history:
        return [system, {"role": "user", "content": [intro, *_screen(screenshot, cfg, observation, last_tool)]}]
    prev = history[-1]
    first = [intro]
    if prev.screenshot is not None and cfg.send_images:
        first += [_text("Current screenshot:"), image_part(prev.screenshot, cfg.image_factor)]
    return [system, {"role": "user", "content": first},
            {"role": "assistant", "content": [_text(prev.output)]},
            {"role": "user", "content": _screen(screenshot, cfg, observation, last_tool)}]
