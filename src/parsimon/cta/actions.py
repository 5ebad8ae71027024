"""The structured form of an environment's action space, for LLM agents with constrained output.

Each environment module defines ``action_format(...) -> ActionFormat`` next to its text action parser:
the action kinds it accepts in the current state, each kind's fields as JSON schemas, and the function
that writes a structured action as the environment's text action. From that one definition come the
JSON schema (and grammar) a reply is constrained to, the reply format a prompt describes, and the text
the environment receives, so they cannot drift apart.

A reply has the shape ``{"thinking": "...", "action": {"kind": "VERIFY", "label": "B"}}``; ``thinking``
is present only for thinking agents and is capped in characters (about four per token).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import ConfigError
from parsimon.llm.structured import StructuredOutput

__all__ = ["ActionFormat", "ActionKind", "CHARS_PER_TOKEN", "enum_field", "show", "text_field"]

# Characters per token used to turn a thinking-token cap into the schema's maxLength (English text, BPE).
CHARS_PER_TOKEN = 4


def enum_field(values: list[str] | tuple[str, ...]) -> dict:
    """A string field restricted to ``values``."""
    if not values:
        raise ConfigError("an enum field needs at least one value")
    return {"type": "string", "enum": list(values)}


def text_field(max_chars: int, min_chars: int = 0) -> dict:
    """A free string field of ``min_chars``..``max_chars`` characters."""
    return {"type": "string", "minLength": min_chars, "maxLength": max_chars}


@dataclass(frozen=True)
class ActionKind:
    """One kind of action: its name (``VERIFY``), its fields as JSON schemas, and example values the
    prompt shows for them (``{"label": "<one of A, B, C>"}``)."""

    kind: str
    fields: Mapping[str, dict] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)

    def schema(self) -> dict:
        props = {"kind": enum_field([self.kind]), **self.fields}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def example(self) -> str:
        parts = [f'"kind": "{self.kind}"'] + [f'"{k}": {self.examples.get(k, "...")}' for k in self.fields]
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class ActionFormat:
    """The actions an environment accepts in one state, and how to write one as its text action.

    Args:
        name: a short name (the schema's name).
        kinds: the action kinds allowed now.
        to_text: ``to_text(action) -> str`` for a validated ``{"kind": ..., **fields}``.
    """

    name: str
    kinds: tuple[ActionKind, ...]
    to_text: Callable[[dict], str]

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ConfigError("an ActionFormat needs at least one action kind")

    def schema(self, thinking_chars: int = 0) -> dict:
        """The reply's JSON schema; a ``thinking`` field of at most ``thinking_chars`` characters comes first
        when ``thinking_chars`` > 0."""
        alts = [k.schema() for k in self.kinds]
        props: dict[str, Any] = {}
        if thinking_chars > 0:
            props["thinking"] = text_field(thinking_chars)
        props["action"] = alts[0] if len(alts) == 1 else {"anyOf": alts}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def output(self, thinking_chars: int = 0) -> StructuredOutput:
        """The :class:`~parsimon.llm.structured.StructuredOutput` a reply is constrained to."""
        return StructuredOutput(self.schema(thinking_chars), name=self.name,
                                description=self.describe(thinking_chars))

    def describe(self, thinking_chars: int = 0) -> str:
        """The reply format in words, for the prompt."""
        actions = " or ".join(k.example() for k in self.kinds)
        if thinking_chars > 0:
            return (f'a JSON object {{"thinking": "<brief reasoning, at most {thinking_chars} characters>", '
                    f'"action": ACTION}} where ACTION is {actions}')
        return f'a JSON object {{"action": ACTION}} where ACTION is {actions}'

    def action(self, reply: dict) -> str:
        """The environment's text action for a validated reply."""
        return self.to_text(reply["action"])


def show(values: list[str] | tuple[str, ...]) -> str:
    """``"<one of A, B, C>"`` for a prompt example (a single value is shown as itself)."""
    if len(values) == 1:
        return json.dumps(values[0])
    return '"<one of ' + ", ".join(values) + '>"'
