"""LLM agents: the paper's PROMPTED (no prior in the prompt) and CTA-PROMPTED (the prior in the prompt)
agents, thinking and non-thinking, over any OpenAI-compatible endpoint via :class:`parsimon.llm.ChatClient`.

Both variants get the task and its cost parameters (γ, or d_u / d_c); only CTA-PROMPTED gets the prior
block. *Thinking* asks for reasoning and then a final ``Action: ...`` line (larger token budget);
*non-thinking* asks for the action alone (the paper prepends an empty ``<think></think>``; with
``no_think_tag=True`` we also append Qwen3's ``/no_think`` switch to each user turn). A reply that
does not parse is sent to the environment as is, which answers with an error and consumes the turn (as
the paper handles it); it is counted in ``stats["parse_failures"]``. When the conversation outgrows the
model's context window (the endpoint answers "maximum context length"), the oldest exchange is dropped and
the request sent again (``stats["history_trimmed"]``); the system prompt and first turn always stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parsimon.cta.agents.parser import ActionGrammar, parse_action
from parsimon.cta.base import Policy
from parsimon.errors import BudgetExceeded, LLMError

__all__ = ["LLMAgent", "PromptSet", "pandora_prompts", "qa_prompts"]

# How OpenAI-compatible servers (llama-cpp-python, vLLM, OpenAI) say the prompt does not fit the context.
_CONTEXT_FULL = re.compile(r"context_length_exceeded|maximum context length|context window|too many tokens",
                           re.IGNORECASE)


@dataclass(frozen=True)
class PromptSet:
    """What an environment gives an LLM agent: ``system(thinking)``, ``first(view, prior)`` (the first
    user turn; ``prior`` None for PROMPTED) and ``grammar(view)`` (the action grammar)."""

    system: Callable[[bool], str]
    first: Callable[[Any, Any], str]
    grammar: Callable[[Any], ActionGrammar]


def _fmt(p: float) -> str:
    return f"{p:.2f}".rstrip("0").rstrip(".") if p not in (0, 1) else str(int(p) if p == int(p) else p)


# ---------------------------------------------------------------------------------------------- Pandora

def _pandora_system(thinking: bool) -> str:
    base = (
        "You are playing a game with several bags. Exactly one bag holds a prize. Each turn you take one "
        "action:\n"
        "- VERIFY <label>: look inside one bag and learn whether it holds the prize (YES/NO). This uses "
        "one timestep.\n"
        "- GUESS <label>: commit to a bag. The game ends.\n"
        "If you GUESS the prize bag at timestep t you receive r^t, where r is the discount factor; a wrong "
        "guess gives 0. Verifying costs time, so the reward shrinks with every VERIFY. Maximise your "
        "expected reward.\n")
    if thinking:
        return base + ("Think briefly about the trade-off, then finish with one line: "
                       "`Action: VERIFY <label>` or `Action: GUESS <label>`.")
    return base + "Respond with exactly one action: VERIFY <label> or GUESS <label>. No explanation."


def _pandora_first(view: dict, prior: dict | None) -> str:
    lines = ["--- NEW GAME ---", "TIMESTEP: t=0", "PROBLEM PARAMETERS:",
             f"- Bag Labels: {', '.join(view['labels'])}"]
    if prior is not None:
        lines.append("- Prior Probabilities: " + ", ".join(f"{lab}: {_fmt(prior[lab])}" for lab in view["labels"]))
    lines += [f"- Discount Factor r: {view['gamma']}", "Choose your action."]
    return "\n".join(lines)


pandora_prompts = PromptSet(_pandora_system, _pandora_first, lambda view: ActionGrammar.pandora(view["labels"]))


# ---------------------------------------------------------------------------------------------- QA

def _qa_system(thinking: bool) -> str:
    base = (
        "You answer a factual question. You may first RETRIEVE one document from a local library (at most "
        "once), then answer. A correct answer given at timestep t earns d^t, where d is the discount "
        "factor (t = 0 if you answer directly, 1 after retrieving); a wrong answer earns 0.\n"
        "Actions: `RETRIEVE` or `ANSWER: <short answer>`.\n")
    if thinking:
        return base + "Think briefly, then finish with one line: `Action: RETRIEVE` or `Action: ANSWER: <answer>`."
    return base + "Respond with exactly one action and nothing else."


def _qa_first(view: dict, prior: Any) -> str:
    lines = [f"Question: {view['question']}", f"Discount factor d: {view['gamma']:.2f}"]
    if prior is not None:
        k_da, p_ret = prior
        lines += [f"Estimated probability that your direct answer is correct: {k_da:.2f}",
                  f"Estimated probability of a correct answer after retrieval: {p_ret:.2f}"]
    lines.append("Choose your action.")
    return "\n".join(lines)


qa_prompts = PromptSet(_qa_system, _qa_first, lambda view: ActionGrammar.qa())


# ---------------------------------------------------------------------------------------------- agent

class LLMAgent(Policy):
    """A chat-model agent for any environment with a :class:`PromptSet`.

    Args:
        prompts: the environment's prompts and action grammar.
        with_prior: CTA-PROMPTED (True: the prior block is in the prompt) or PROMPTED (False).
        thinking: ask for reasoning before the action (more tokens) or for the action alone.
        client: a :class:`parsimon.llm.ChatClient` (default: one built from ``base_url``/``model``, i.e.
            the local model unless configured otherwise).
        max_tokens: completion budget per turn (default 512 thinking, 16 non-thinking).
        temperature: sampling temperature (0 = greedy, as our reproduction uses).
        no_think_tag: append ``/no_think`` to user turns in non-thinking mode (Qwen3 endpoints).
        extra_body: further request fields for the endpoint, e.g.
            ``{"chat_template_kwargs": {"enable_thinking": False}}`` for a vLLM-served Qwen3.
    """

    def __init__(self, *, prompts: PromptSet, with_prior: bool = True, thinking: bool = False,
                 client: Any = None, base_url: str | None = None, model: str | None = None,
                 max_tokens: int | None = None, temperature: float = 0.0, no_think_tag: bool = False,
                 seed: int | None = 0, extra_body: dict | None = None):
        super().__init__()
        self.prompts, self.with_prior, self.thinking = prompts, with_prior, thinking
        self.uses_prior = with_prior
        self._client, self._base_url, self._model = client, base_url, model
        self.max_tokens = max_tokens or (512 if thinking else 16)
        if self.max_tokens < 1:
            raise ValueError(f"`max_tokens` must be >= 1, got {max_tokens}")
        self.temperature, self.no_think_tag, self.llm_seed = temperature, no_think_tag, seed
        self.extra_body = dict(extra_body or {})
        self.messages: list[dict[str, str]] = []
        self.replies: list[str] = []

    @property
    def client(self) -> Any:
        if self._client is None:
            from parsimon.llm import ChatClient

            self._client = ChatClient(self._base_url, self._model, component="cta.llm")
        return self._client

    def _user(self, text: str) -> dict[str, str]:
        if self.no_think_tag and not self.thinking:
            text += " /no_think"
        return {"role": "user", "content": text}

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        shown = prior if self.with_prior else None
        if self.with_prior and prior is None:
            raise ValueError("CTA-PROMPTED needs a prior; choose a prior source (e.g. prior='true')")
        self.grammar = self.prompts.grammar(task_view)
        self.messages = [{"role": "system", "content": self.prompts.system(self.thinking)},
                         self._user(self.prompts.first(task_view, shown))]
        self.replies = []

    def _reply(self, observation: str, info: dict) -> str | None:
        """Send the observation (after the first turn) and return the model's reply text, or None when the
        endpoint failed (counted as an error and a parse failure; the turn is consumed)."""
        if info.get("t", 0) > 0:
            self.messages.append(self._user(observation))
        self.count("llm_calls")
        try:
            while True:
                try:
                    reply = self.client.chat(self.messages, temperature=self.temperature,
                                             max_tokens=self.max_tokens, seed=self.llm_seed, **self.extra_body)
                    break
                except LLMError as exc:
                    # The conversation outgrew the model's context window: drop the oldest exchange (the
                    # system prompt and the first user turn, which state the task, are always kept) and
                    # ask again; give up when nothing is left to drop.
                    if not (_CONTEXT_FULL.search(str(exc)) and self._drop_oldest_exchange()):
                        raise
        except BudgetExceeded:
            raise
        except LLMError as exc:
            self.count("llm_errors")
            self.count("parse_failures")
            text = f"(no reply: {exc})"
            self.messages.append({"role": "assistant", "content": text})
            self.replies.append(text)
            self._failed_reply = text
            return None
        self.count("tokens_in", reply.usage.prompt_tokens)
        self.count("tokens_out", reply.usage.completion_tokens)
        text = reply.text
        self.replies.append(text)
        self.messages.append({"role": "assistant", "content": text})
        return text

    def _drop_oldest_exchange(self) -> bool:
        """Remove the oldest assistant reply and the user turn after it (messages 2 and 3), keeping the
        system prompt, the first user turn and the latest user turn; False when there is nothing to drop."""
        if len(self.messages) < 5:
            return False
        del self.messages[2:4]
        self.count("history_trimmed")
        return True

    def act(self, observation: str, info: dict) -> str:
        text = self._reply(observation, info)
        if text is None:
            return self._failed_reply
        parsed = parse_action(text, self.grammar)
        if parsed.action is None:
            self.count("parse_failures")
            return text
        return parsed.action
