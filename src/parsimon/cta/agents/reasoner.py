"""A programmatic "reasoner" that speaks the chat-completions interface: it reads the Pandora prompts an
LLM agent sends (the same text, the prior line present or not), solves them with Algorithm 1 and replies
``Action: VERIFY X`` / ``Action: GUESS X`` (free text), or ``{"action": {"kind": "VERIFY", "label": "X"}}``
when the agent asks for structured output.

It shows what the prompts contain: with the prior line (CTA-PROMPTED) it matches the oracle on every
task; without it (PROMPTED) the best it can do is to act optimally under a uniform prior. It stands in
for the reasoning a capable model does, through the very same agent, parser and environment.
"""

from __future__ import annotations

import json
import re
from typing import Any

from parsimon.llm.types import ChatResponse, Usage

__all__ = ["PandoraReasonerClient"]

_LABELS = re.compile(r"Bag Labels:\s*([^\n]+)")
_PRIORS = re.compile(r"Prior Probabilities:\s*([^\n]+)")
_GAMMA = re.compile(r"Discount Factor r:\s*([0-9.]+)")
_RESULT = re.compile(r"verification result is:\s*(YES|NO),\s*([A-Za-z])")


class PandoraReasonerClient:
    """A drop-in for :class:`parsimon.llm.ChatClient` in Pandora agents (no network, no tokens)."""

    model = "pandora-reasoner"

    def chat(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatResponse:
        text = self._decide(messages)
        out = kwargs.get("structured")
        if out is None or not text.startswith("Action: "):
            return ChatResponse(text=text, usage=Usage(0, 0))
        kind, label = text[len("Action: "):].split()
        reply = {"action": {"kind": kind, "label": label}}
        if "thinking" in out.schema["properties"]:
            reply = {"thinking": "Algorithm 1 on the stated prior.", **reply}
        return ChatResponse(text=json.dumps(reply), usage=Usage(0, 0), mode="constrained-schema",
                            parsed=out.parse(json.dumps(reply)))

    def _decide(self, messages: list[dict[str, Any]]) -> str:
        from parsimon.cta.pandora import optimal_plan

        users = [m["content"] for m in messages if m["role"] == "user"]
        first = users[0]
        m_lab, m_g = _LABELS.search(first), _GAMMA.search(first)
        if m_lab is None or m_g is None:
            return "I cannot read the game parameters."
        labels = [x.strip() for x in m_lab.group(1).split(",")]
        gamma = float(m_g.group(1))
        m_pri = _PRIORS.search(first)
        if m_pri:
            belief = {k.strip(): float(v) for k, v in (kv.split(":") for kv in m_pri.group(1).split(","))}
        else:
            belief = {lab: 1.0 for lab in labels}
        for text in users[1:]:
            r = _RESULT.search(text)
            if r and r.group(1) == "YES":
                return f"Action: GUESS {r.group(2)}"
            if r:
                belief.pop(r.group(2), None)
        if sum(belief.values()) <= 0:
            belief = {k: 1.0 for k in belief}
        _, action = optimal_plan(belief, gamma)
        return f"Action: {action}"
