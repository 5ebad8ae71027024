"""The policy contract and the policy registry.

A policy is told the episode's goal (:meth:`Policy.reset`) and answers one :class:`Decision` per
observation (:meth:`Policy.act`). A decision carries the action, or ``None`` with the reason when the
policy produced nothing valid (an unparseable model reply): the agent loop counts those as invalid
actions. ``output`` is the policy's text in GUI-Owl's reply format, so every policy leaves the same kind
of history and trajectory log.

Policies register by name in :data:`POLICIES`: ``rule`` (task-specific DOM rules for MiniWoB and the
instruction grammar of our apps), ``proposal`` (candidate actions from interactive elements, ranked by
overlap with the goal), ``guiowl`` (GUI-Owl over an OpenAI-compatible endpoint), ``axtree-json`` (a
small model choosing from the accessibility tree under a JSON schema, so every reply is a valid
action), ``replay`` (a logged trajectory), ``random``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from parsimon.gui.actions import Action
from parsimon.registry import Registry

__all__ = ["POLICIES", "Decision", "Policy", "render_output"]

POLICIES: Registry = Registry("policy")


@dataclass
class Decision:
    """One step's choice.

    Attributes:
        action: The action, or None when the policy produced nothing valid.
        output: The policy's text (a GUI-Owl-format reply, or the model's raw reply).
        error: Why there is no valid action.
        thought: The reasoning, if any.
        mcp_call: A call to an MCP tool instead of a GUI action (``{"name", "arguments"}``).
        confidence: The policy's confidence in [0, 1], if it has one.
        tokens: Model tokens this decision cost (prompt + completion).
        meta: Anything else worth logging.
    """

    action: Action | None
    output: str = ""
    error: str | None = None
    thought: str | None = None
    mcp_call: Any = None
    confidence: float | None = None
    tokens: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when the decision holds an action or an MCP call."""
        return self.action is not None or self.mcp_call is not None


def render_output(action: Action, note: str = "") -> str:
    """A GUI-Owl-style reply for a non-LLM policy's action (``Action: ...`` plus the unified action JSON)."""
    text = note or action.describe()
    return f"Action: {text}\n<tool_call>\n{json.dumps({'name': 'unified', 'arguments': action.to_dict()})}\n</tool_call>"


class Policy(ABC):
    """See the module docstring."""

    name: str = ""
    needs_llm: bool = False

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """A new episode with this goal (``info``: the environment's reset info)."""

    @abstractmethod
    def act(self, obs: Any, info: dict[str, Any]) -> Decision:
        """The next decision for observation ``obs`` (``info``: the last step's info)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (an HTTP client, a local model)."""
