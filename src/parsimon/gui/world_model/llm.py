"""The ``llm`` world model: a chat model predicts the delta as JSON under a schema.

The prompt lists the elements around the action's target (label, tag, role, text, value, checked) and
the action; the request carries a JSON schema as ``response_format`` (llama.cpp's server compiles it
to a grammar), so the reply is always an object ``{"ops": [...], "summary": "...", "confidence": x}``
whose ops use the delta vocabulary (``checked``, ``value``, ``text``, ``attr``, ``focus``, ``remove``,
``add``, ``navigate``). Ops naming elements that are not on the page are dropped when the delta is
applied (and count as errors when it is scored). The model is called through
:class:`parsimon.llm.ChatClient`, so its tokens are charged to the ledger under the current run.
"""

from __future__ import annotations

import html as _html
import json
import time
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError, MalformedReply
from parsimon.gui.actions import Action
from parsimon.gui.world_model.base import WORLD_MODELS, Context, Prediction, WorldModel, target_element
from parsimon.gui.world_model.delta import (
    AddNode,
    Delta,
    Navigate,
    Op,
    PageState,
    RemoveNode,
    SetAttr,
    SetChecked,
    SetFocus,
    SetText,
    SetValue,
)
from parsimon.gui.world_model.features import candidates
from parsimon.gui.world_model.summary import summarize

__all__ = ["LLMWorldModel", "LLMWorldModelConfig", "delta_schema", "ops_from_json"]

OP_NAMES = ("checked", "value", "text", "attr", "focus", "remove", "add", "navigate")
SYSTEM = ("You are a world model of web pages. Given a page's elements and an action, predict only what the action "
          "changes on the page, as a list of operations on element ids. Predict an empty list when nothing "
          "changes. Answer with JSON only.")


@dataclass(frozen=True)
class LLMWorldModelConfig:
    """Settings of the LLM world model."""

    max_elements: int = 40  # elements listed in the prompt (nearest to the target first)
    max_tokens: int = 200
    temperature: float = 0.0
    constrained: bool = True  # send the JSON schema as response_format

    def __post_init__(self) -> None:
        if self.max_elements < 1:
            raise ConfigError(f"`max_elements` must be >= 1, got {self.max_elements}")


def delta_schema(max_ops: int = 8) -> dict[str, Any]:
    """The ``response_format`` of a delta reply."""
    op = {"type": "object",
          "properties": {"op": {"type": "string", "enum": list(OP_NAMES)}, "id": {"type": "integer"},
                         "name": {"type": "string"}, "value": {"type": "string"}, "checked": {"type": "boolean"},
                         "url": {"type": "string"}},
          "required": ["op"], "additionalProperties": False}
    return {"type": "json_object",
            "schema": {"type": "object",
                       "properties": {"ops": {"type": "array", "items": op, "maxItems": max_ops},
                                      "summary": {"type": "string", "maxLength": 300},
                                      "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
                       "required": ["ops", "summary", "confidence"], "additionalProperties": False}}


def ops_from_json(items: list[Any]) -> tuple[list[Op], int]:
    """Delta ops from the reply's ``ops`` list, and how many items were unusable."""
    ops: list[Op] = []
    bad = 0
    for it in items if isinstance(items, list) else []:
        try:
            kind, pid = it["op"], it.get("id")
            if kind == "navigate":
                ops.append(Navigate(str(it["url"])))
            elif kind == "focus":
                ops.append(SetFocus(int(pid) if pid is not None else None))
            elif kind == "checked":
                ops.append(SetChecked(int(pid), bool(it["checked"])))
            elif kind == "value":
                ops.append(SetValue(int(pid), str(it.get("value", ""))))
            elif kind == "text":
                ops.append(SetText(int(pid), (str(it.get("value", "")),)))
            elif kind == "attr":
                ops.append(SetAttr(int(pid), str(it["name"]), it.get("value")))
            elif kind == "remove":
                ops.append(RemoveNode(int(pid)))
            elif kind == "add":
                ops.append(AddNode(int(pid), 10**6, f"<div>{_html.escape(str(it.get('value', '')))}</div>"))
            else:
                bad += 1
        except (KeyError, TypeError, ValueError):
            bad += 1
    return ops, bad


class LLMWorldModel(WorldModel):
    """See the module docstring.

    Args:
        client: A :class:`parsimon.llm.ChatClient` (the local model by default).
        config: :class:`LLMWorldModelConfig`.
    """

    name = "llm"

    def __init__(self, client: Any = None, *, config: LLMWorldModelConfig | None = None) -> None:
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(component="gui.world_model.llm")
        self.client, self.config = client, config or LLMWorldModelConfig()
        self.tokens = 0

    def prompt(self, obs: Any, action: Action) -> list[dict[str, str]]:
        """The chat messages for one prediction."""
        state = PageState.from_observation(obs)
        index = state.doc().index()
        el = target_element(obs, action)
        target = index.get(el.pid) if el is not None else None
        info = {e.pid: e for e in obs.elements}
        lines = []
        for n in candidates(index, target, self.config.max_elements):
            e = info.get(n.pid)
            parts = [f"[{n.pid}] <{n.tag}>"]
            if e is not None and e.role not in ("generic", ""):
                parts.append(e.role)
            label = (e.label if e is not None else "") or ""
            if label:
                parts.append(json.dumps(label[:60]))
            if n.get("value"):
                parts.append(f"value={json.dumps(n.get('value')[:40])}")
            if n.has("checked"):
                parts.append("checked")
            if e is not None and not e.visible:
                parts.append("hidden")
            lines.append(" ".join(parts))
        focus = f"focused element: [{obs.focused}]" if obs.focused is not None else "nothing focused"
        user = (f"Page {obs.url}\n{focus}\nElements:\n" + "\n".join(lines) + f"\n\nAction: {action.describe()}\n\n"
                'Answer as {"ops": [{"op": "checked|value|text|attr|focus|remove|add|navigate", "id": <element id>, '
                '...}], "summary": "<what changes>", "confidence": <0..1>}.')
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def predict(self, obs: Any, action: Action, context: Context | None = None) -> Prediction:  # noqa: D102
        t0 = time.perf_counter()
        if action.terminal:
            d = Delta([])
            d.summary = summarize(PageState.from_observation(obs), action.describe(), d)
            return Prediction(action, d, 0.99, self.name, time.perf_counter() - t0)
        cfg = self.config
        resp = self.client.chat(self.prompt(obs, action), temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                                response_format=delta_schema() if cfg.constrained else None)
        self.tokens += resp.usage.prompt_tokens + resp.usage.completion_tokens
        try:
            data = json.loads(resp.text)
            if not isinstance(data, dict):
                raise TypeError("not an object")
        except (json.JSONDecodeError, TypeError) as exc:
            raise MalformedReply(f"the world model's reply is not a JSON object: {resp.text[:200]!r}") from exc
        ops, bad = ops_from_json(data.get("ops", []))
        delta = Delta(ops, str(data.get("summary") or ""))
        if not delta.summary:
            delta.summary = summarize(PageState.from_observation(obs), action.describe(), delta)
        try:
            conf = float(data.get("confidence", 0.5))
        except (TypeError, ValueError):
            conf = 0.5
        return Prediction(action, delta, max(0.0, min(1.0, conf)), self.name, time.perf_counter() - t0,
                          meta={"unusable_ops": bad, "tokens": resp.usage.prompt_tokens + resp.usage.completion_tokens})

    def close(self) -> None:  # noqa: D102
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


WORLD_MODELS.register("llm", LLMWorldModel, describe="a chat model (parsimon.llm) predicting the delta under a JSON schema")
