"""Parse a GUI-Owl reply: ``<think>``, the ``Action:`` line, the ``<tool_call>`` JSON, schema validation.

A reply reads::

    <think>...</think>            (thinking variants; or the endpoint's ``reasoning_content``)
    Action: Click the search bar.
    <tool_call>
    {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [512, 88]}}
    </tool_call>

:func:`parse_reply` keeps the official clients' leniency, and records each fallback it used in
``Reply.warnings``: text before ``</think>`` is the thought; a block that is not JSON is read with
``ast.literal_eval`` (single quotes, ``True``); a missing ``</tool_call>`` takes the rest of the reply;
a reply without tags but with a ``{"name": ..., "arguments": ...}`` object (in a code fence or bare) is
accepted; ``arguments`` given as a JSON string is decoded; ``computer_use``'s ``click`` means
``left_click``. With ``strict=True`` each of these is an error instead.

What cannot be read raises :class:`~parsimon.errors.MalformedReply` (no tool call, unreadable JSON, no
``name``); a call that reads but breaks the ``<tools>`` schema raises
:class:`~parsimon.errors.InvalidAction` (unknown tool, unknown action, missing or mistyped argument).
Both messages quote the offending part.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import InvalidAction, MalformedReply
from parsimon.gui.actions import Action
from parsimon.gui.codecs import decode
from parsimon.gui.tools import parameters_schema, tool_name

__all__ = ["Reply", "ToolCall", "format_reply", "parse_reply"]

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<tool_call>", re.IGNORECASE)
_ACTION = re.compile(r"^\s*\**Action\**\s*:\s*(.*)$", re.MULTILINE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


@dataclass(frozen=True)
class ToolCall:
    """One ``{"name": ..., "arguments": {...}}`` object."""

    name: str
    arguments: dict


@dataclass(frozen=True)
class Reply:
    """A parsed reply.

    Attributes:
        raw: The reply text as received.
        thought: The reasoning (``<think>`` or ``reasoning_content``), if any.
        action_text: The ``Action:`` line, if any.
        call: The tool call acted on (the first one).
        action: The unified action, when the call is the platform's tool.
        mcp_call: The call, when it names an MCP tool instead.
        warnings: The fallbacks used to read the reply.
    """

    raw: str
    thought: str | None
    action_text: str | None
    call: ToolCall
    action: Action | None = None
    mcp_call: ToolCall | None = None
    warnings: tuple[str, ...] = field(default=())


def _excerpt(text: str, n: int = 160) -> str:
    text = text.strip().replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "..."


def _load_object(block: str, notes: list[str], strict: bool) -> Any:
    block = _FENCE.sub("", block.strip())
    try:
        return json.loads(block)
    except json.JSONDecodeError as exc:
        if strict:
            raise MalformedReply(f"the <tool_call> block is not JSON ({exc.msg}): {_excerpt(block)}") from None
        try:
            value = ast.literal_eval(block)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise MalformedReply(f"the <tool_call> block is neither JSON nor a Python literal ({exc.msg}): "
                                 f"{_excerpt(block)}") from None
        notes.append("tool_call read with ast.literal_eval (not JSON)")
        return value


def _find_blocks(body: str, notes: list[str], strict: bool) -> list[str]:
    blocks = _TOOL_CALL.findall(body)
    if blocks:
        return blocks
    m = _OPEN.search(body)
    if m:
        if strict:
            raise MalformedReply(f"<tool_call> is never closed: {_excerpt(body[m.start():])}")
        notes.append("missing </tool_call>: took the rest of the reply")
        return [body[m.end():]]
    start = body.find("{")
    if start >= 0 and '"name"' in body and "arguments" in body and not strict:
        end = body.rfind("}")
        notes.append("no <tool_call> tags: read the JSON object in the reply")
        return [body[start:end + 1]]
    raise MalformedReply(f"the reply has no <tool_call> block: {_excerpt(body)}")


def _as_call(obj: Any, notes: list[str], strict: bool) -> ToolCall:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise MalformedReply(f"a tool call must be an object with a string `name`, got {_excerpt(str(obj))}")
    args = obj.get("arguments", obj.get("parameters"))
    if isinstance(args, str) and not strict:
        try:
            args = json.loads(args)
            notes.append("`arguments` was a JSON string")
        except json.JSONDecodeError:
            raise MalformedReply(f"`arguments` of {obj['name']!r} is a string that is not JSON: "
                                 f"{_excerpt(args)}") from None
    if not isinstance(args, dict):
        raise MalformedReply(f"`arguments` of {obj['name']!r} must be an object, got {_excerpt(str(args))}")
    return ToolCall(obj["name"], args)


def _validate_schema(schema: dict, args: dict, where: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(args, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        raise InvalidAction(f"{where}: `{path}` breaks the schema: {exc.message}") from None


def _mcp_schemas(mcp_tools: Sequence[dict]) -> dict[str, dict]:
    out = {}
    for t in mcp_tools:
        fn = t["function"] if t.get("type") == "function" else t
        out[fn["name"]] = fn.get("inputSchema") or fn.get("parameters") or {"type": "object"}
    return out


def parse_reply(text: str, platform: str, *, mcp_tools: Sequence[dict] = (), reasoning: str | None = None,
                strict: bool = False) -> Reply:
    """Parse one reply for ``platform`` (``computer``, ``mobile`` or ``browser``).

    Args:
        text: The assistant message's content.
        platform: Whose tool the reply should call.
        mcp_tools: The MCP tools declared in the prompt (calls to them are validated against their
            ``inputSchema``).
        reasoning: The endpoint's ``reasoning_content``, if it sends the thought separately.
        strict: Refuse the official clients' fallbacks (see the module docstring).

    Raises:
        MalformedReply: the reply cannot be read.
        InvalidAction: the call breaks the declared schemas.
    """
    if not isinstance(text, str):
        raise MalformedReply(f"the reply must be text, got {type(text).__name__}")
    notes: list[str] = []
    thought = reasoning.strip() if reasoning else None
    body = text
    if "</think>" in text:
        head, body = text.rsplit("</think>", 1)
        thought = head.replace("<think>", "").strip() or thought
    elif "<think>" in text:
        raise MalformedReply(f"the reply opens <think> but never closes it (out of tokens?): {_excerpt(text)}")
    m = _ACTION.search(body)
    action_text = m.group(1).strip() if m else None
    if action_text is None:
        if strict:
            raise MalformedReply(f"the reply has no `Action:` line: {_excerpt(body)}")
        notes.append("no Action: line")
    blocks = _find_blocks(body, notes, strict)
    if len(blocks) > 1:
        if strict:
            raise MalformedReply(f"the reply has {len(blocks)} <tool_call> blocks; exactly one is allowed")
        notes.append(f"{len(blocks)} tool calls: acted on the first")
    call = _as_call(_load_object(blocks[0], notes, strict), notes, strict)
    own = tool_name(platform)
    mcp = _mcp_schemas(mcp_tools)
    if call.name == own:
        args = dict(call.arguments)
        if platform == "computer" and args.get("action") == "click" and not strict:
            args["action"] = "left_click"
            notes.append("computer_use `click` read as `left_click`")
            call = ToolCall(call.name, args)
        _validate_schema(parameters_schema(platform), args, own)
        action = decode(platform, args)
        return Reply(text, thought, action_text, call, action=action, warnings=tuple(notes))
    if call.name in mcp:
        _validate_schema(mcp[call.name], call.arguments, call.name)
        return Reply(text, thought, action_text, call, mcp_call=call, warnings=tuple(notes))
    raise InvalidAction(f"the reply calls an undeclared tool {call.name!r}; declared: {[own, *mcp]}")


def format_reply(action_text: str, call: dict[str, Any], thought: str | None = None) -> str:
    """A reply in GUI-Owl's format (for scripted endpoints and tests)."""
    think = f"<think>\n{thought}\n</think>\n" if thought else ""
    return f"{think}Action: {action_text}\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
