"""The ``axtree-json`` policy: a small local model picks the next action under a JSON schema.

The model reads the instruction, the page's accessibility tree and the actions taken so far, and
answers ``{"action": "<one candidate>"}``. The candidates are the page's actions enumerated by
:func:`~parsimon.gui.policies.proposal.propose` (click an element, type a quoted string into a field,
pick an option, stop), written as short strings (``click [12] 'Submit'``). :func:`action_schema`
turns them into a JSON schema whose ``action`` is an ``enum`` of exactly those strings, and the request
carries it as ``response_format`` (llama.cpp's server compiles it to a grammar), so every reply the
endpoint can produce names a valid action: the invalid-action rate is zero by construction, and a reply
that still fails to parse (an endpoint that ignores ``response_format``) is counted as invalid, not
repaired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.policies.base import POLICIES, Decision, Policy, render_output
from parsimon.gui.policies.proposal import ScoredAction, propose

__all__ = ["AXTreePolicy", "AXTreePolicyConfig", "action_schema", "candidate_strings"]

SYSTEM = ("You operate a web page for a user. Each turn you see the task, the page's accessibility tree and the "
          "actions already taken. Choose the single next action from the allowed list. Answer with JSON only.")


@dataclass(frozen=True)
class AXTreePolicyConfig:
    """Settings of the constrained text policy."""

    max_candidates: int = 24  # the enum's size (the best-scoring candidates are kept)
    max_tree_chars: int = 2500  # accessibility-tree text per prompt
    max_tokens: int = 48  # the answer is one short JSON object
    temperature: float = 0.0
    constrained: bool = True  # send the JSON schema as response_format

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ConfigError(f"`max_candidates` must be >= 1, got {self.max_candidates}")


def _clean(text: str) -> str:
    # llama.cpp's schema-to-grammar conversion mis-escapes double quotes and backslashes inside enum
    # strings (the server then fails to parse its own grammar), so candidates use neither.
    return text.replace('"', "'").replace("\\", "/")


def _string(obs: Any, cand: ScoredAction) -> str:
    a = cand.action
    el = obs.element(a.target.id) if a.target is not None and hasattr(a.target, "id") else None
    label = _clean((el.label if el is not None else "")[:40])
    if a.kind == "click":
        return f"click [{a.target.id}] '{label}'"
    if a.kind == "type":
        return f"type '{_clean(a.text or '')}' into [{a.target.id}] '{label}'"
    if a.kind == "select":
        return f"select '{_clean(a.option or '')}' in [{a.target.id}]"
    return "stop"


def candidate_strings(obs: Any, history: list[Action], k: int) -> dict[str, Action]:
    """The allowed actions as ``{string: Action}``, best first, with ``stop`` always present."""
    out: dict[str, Action] = {}
    for cand in propose(obs, history):
        if len(out) >= k - 1:
            break
        s = _string(obs, cand)
        out.setdefault(s, cand.action)
    out.setdefault("stop", Action("terminate", status="success"))
    return out


def action_schema(choices: list[str]) -> dict[str, Any]:
    """The ``response_format`` that constrains a reply to one of ``choices``.

    This is the one place the schema is derived: llama.cpp's server takes
    ``{"type": "json_object", "schema": ...}``; an endpoint following OpenAI's structured outputs takes
    the same schema under ``json_schema``.
    """
    if not choices:
        raise ConfigError("`choices` must not be empty")
    return {"type": "json_object",
            "schema": {"type": "object", "properties": {"action": {"type": "string", "enum": list(choices)}},
                       "required": ["action"], "additionalProperties": False}}


class AXTreePolicy(Policy):
    """See the module docstring.

    Args:
        client: A :class:`parsimon.llm.ChatClient` (the local SmolLM2 server by default).
        config: :class:`AXTreePolicyConfig`.
    """

    name = "axtree-json"
    needs_llm = True

    def __init__(self, client: Any = None, *, config: AXTreePolicyConfig | None = None, base_url: str | None = None,
                 model: str | None = None, api_key: str | None = None) -> None:
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(base_url=base_url, model=model, api_key=api_key, component="gui.axtree-json")
        self.client, self.config = client, config or AXTreePolicyConfig()
        self.history: list[Action] = []
        self.lines: list[str] = []

    def reset(self, goal: str, info: dict[str, Any]) -> None:  # noqa: D102
        self.history, self.lines = [], []

    def prompt(self, obs: Any, choices: list[str]) -> list[dict]:
        """The chat messages of one step."""
        tree = obs.axtree or "\n".join(f"[{e.pid}] {e.role} \"{e.label}\"" for e in obs.interactive())
        tree = tree[: self.config.max_tree_chars]
        done = "\n".join(self.lines[-6:]) or "none"
        allowed = "\n".join(f"- {c}" for c in choices)
        user = (f"Task: {obs.goal}\n\nPage:\n{tree}\n\nActions taken:\n{done}\n\nAllowed actions:\n{allowed}\n\n"
                'Answer as {"action": "<one allowed action, copied exactly>"}.')
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def act(self, obs: Any, info: dict[str, Any]) -> Decision:  # noqa: D102
        options = candidate_strings(obs, self.history, self.config.max_candidates)
        choices = list(options)
        fmt = action_schema(choices) if self.config.constrained else None
        resp = self.client.chat(self.prompt(obs, choices), temperature=self.config.temperature,
                                max_tokens=self.config.max_tokens, response_format=fmt)
        tokens = resp.usage.prompt_tokens + resp.usage.completion_tokens
        try:
            picked = json.loads(resp.text)["action"]
            action = options[picked]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            return Decision(None, resp.text, error=f"reply is not one of the allowed actions ({type(exc).__name__}): "
                            f"{resp.text[:200]!r}", tokens=tokens)
        self.history.append(action)
        self.lines.append(picked)
        return Decision(action, render_output(action, picked), tokens=tokens, meta={"choices": len(choices)})

    def close(self) -> None:  # noqa: D102
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


POLICIES.register("axtree-json", AXTreePolicy,
                  describe="a small model choosing from the page's candidate actions under a JSON schema")
