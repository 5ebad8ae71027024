"""LLM agents: the paper's PROMPTED (no prior in the prompt) and CTA-PROMPTED (the prior in the prompt)
agents, thinking and non-thinking, over any OpenAI-compatible endpoint via :class:`parsimon.llm.ChatClient`.

Both variants get the task and its cost parameters (γ, or d_u / d_c); only CTA-PROMPTED gets the prior
block. Output comes in two modes (``output=``):

* ``constrained`` (the default): each reply is a JSON object derived from the environment's action space
  in the current state (its ``action_format``), ``{"thinking": ..., "action": {"kind": ..., ...}}``, with
  ``thinking`` only for thinking agents and capped at ``thinking_tokens`` (about four characters a token).
  The client constrains generation to it where the endpoint can (JSON schema or GBNF grammar), otherwise
  parses the reply and asks once more on an error (``stats["replies_fallback"]``, ``stats["reasks"]``).
* ``free``: the paper's free text. *Thinking* asks for reasoning and then a final ``Action: ...`` line;
  *non-thinking* asks for the action alone (the paper prepends an empty ``<think></think>``; with
  ``no_think_tag=True`` we also append Qwen3's ``/no_think`` switch to each user turn). The reply is parsed
  with the environment's grammar.

A reply that does not parse is sent to the environment as is, which answers with an error and consumes the
turn (as the paper handles it); it is counted in ``stats["parse_failures"]``. When the conversation outgrows
the model's context window (the endpoint answers "maximum context length"), the oldest exchange is dropped
and the request sent again (``stats["history_trimmed"]``); the system prompt and first turn always stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parsimon.cta.actions import CHARS_PER_TOKEN, ActionFormat
from parsimon.cta.agents.parser import ActionGrammar, parse_action
from parsimon.cta.base import Policy
from parsimon.errors import BudgetExceeded, ConfigError, LLMError
from parsimon.llm.structured import OUTPUT_MODES as OUTPUTS
from parsimon.llm.structured import StructuredError

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_THINKING_TOKENS", "OUTPUTS", "LLMAgent", "PromptSet", "pandora_prompts",
           "qa_prompts"]

# Completion tokens per turn: (non-thinking, thinking). A structured Pandora / QA action is 15-30 tokens.
DEFAULT_MAX_TOKENS = (64, 512)
# The cap on a constrained reply's thinking field, in tokens (times CHARS_PER_TOKEN characters).
DEFAULT_THINKING_TOKENS = 256

# How OpenAI-compatible servers (llama-cpp-python, vLLM, OpenAI) say the prompt does not fit the context.
_CONTEXT_FULL = re.compile(r"context_length_exceeded|maximum context length|context window|too many tokens",
                           re.IGNORECASE)


@dataclass(frozen=True)
class PromptSet:
    """What an environment gives an LLM agent.

    Attributes:
        system: ``system(thinking, reply_format)``: the system prompt; ``reply_format`` is the structured
            reply's description (constrained output) or None (free text: the prompt asks for text actions).
        first: ``first(view, prior)``: the first user turn (``prior`` None for PROMPTED).
        grammar: ``grammar(view)``: the free-text action grammar.
        action_format: ``action_format(view, info)``: the structured action space in the state ``info``
            describes (the environment's ``action_format``).
        parse_free: ``parse_free(text, view)``: the text action to send for a free reply, or None when it has
            none (default: the last action ``grammar`` finds).
    """

    system: Callable[[bool, str | None], str]
    first: Callable[[Any, Any], str]
    grammar: Callable[[Any], ActionGrammar]
    action_format: Callable[[Any, dict], ActionFormat]
    parse_free: Callable[[str, Any], str | None] | None = None


def _fmt(p: float) -> str:
    return f"{p:.2f}".rstrip("0").rstrip(".") if p not in (0, 1) else str(int(p) if p == int(p) else p)


# ---------------------------------------------------------------------------------------------- Pandora

def _reply_instruction(thinking: bool, reply_format: str) -> str:
    if thinking:
        return (f"Reply with {reply_format}. Think briefly about the trade-off in the thinking field, then give "
                "the action.")
    return f"Reply with only {reply_format}."


def _pandora_system(thinking: bool, reply_format: str | None = None) -> str:
    base = (
        "You are playing a game with several bags. Exactly one bag holds a prize. Each turn you take one "
        "action:\n"
        "- VERIFY <label>: look inside one bag and learn whether it holds the prize (YES/NO). This uses "
        "one timestep.\n"
        "- GUESS <label>: commit to a bag. The game ends.\n"
        "If you GUESS the prize bag at timestep t you receive r^t, where r is the discount factor; a wrong "
        "guess gives 0. Verifying costs time, so the reward shrinks with every VERIFY. Maximise your "
        "expected reward.\n")
    if reply_format is not None:
        return base + _reply_instruction(thinking, reply_format)
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


def _pandora_format(view: dict, info: dict) -> ActionFormat:
    from parsimon.cta.pandora import action_format

    return action_format(info.get("remaining") or view["labels"])


pandora_prompts = PromptSet(_pandora_system, _pandora_first, lambda view: ActionGrammar.pandora(view["labels"]),
                            _pandora_format)


# ---------------------------------------------------------------------------------------------- QA

def _qa_system(thinking: bool, reply_format: str | None = None) -> str:
    base = (
        "You answer a factual question. You may first RETRIEVE one document from a local library (at most "
        "once), then answer. A correct answer given at timestep t earns d^t, where d is the discount "
        "factor (t = 0 if you answer directly, 1 after retrieving); a wrong answer earns 0.\n"
        "Actions: `RETRIEVE` or `ANSWER: <short answer>`.\n")
    if reply_format is not None:
        return base + _reply_instruction(thinking, reply_format)
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


def _qa_format(view: dict, info: dict) -> ActionFormat:
    from parsimon.cta.qa.env import action_format

    return action_format(bool(info.get("retrieved", False)))


qa_prompts = PromptSet(_qa_system, _qa_first, lambda view: ActionGrammar.qa(), _qa_format)


# ---------------------------------------------------------------------------------------------- agent

class LLMAgent(Policy):
    """A chat-model agent for any environment with a :class:`PromptSet`.

    Args:
        prompts: the environment's prompts, action grammar and structured action space.
        with_prior: CTA-PROMPTED (True: the prior block is in the prompt) or PROMPTED (False).
        thinking: ask for reasoning before the action (more tokens) or for the action alone.
        output: ``constrained`` (JSON constrained to the action space; default) or ``free`` (the paper's
            free text), see the module docstring.
        client: a :class:`parsimon.llm.ChatClient` (default: one built from ``base_url``/``model``, i.e.
            the local model unless configured otherwise).
        max_tokens: completion budget per turn (default :data:`DEFAULT_MAX_TOKENS`: 64, 512 thinking).
        thinking_tokens: cap on the constrained reply's thinking field, in tokens (default 256).
        temperature: sampling temperature (0 = greedy, as our reproduction uses).
        no_think_tag: append ``/no_think`` to user turns in non-thinking mode (Qwen3 endpoints).
        extra_body: further request fields for the endpoint, e.g.
            ``{"chat_template_kwargs": {"enable_thinking": False}}`` for a vLLM-served Qwen3.
    """

    def __init__(self, *, prompts: PromptSet, with_prior: bool = True, thinking: bool = False,
                 output: str = "constrained", client: Any = None, base_url: str | None = None,
                 model: str | None = None, max_tokens: int | None = None, thinking_tokens: int | None = None,
                 temperature: float = 0.0, no_think_tag: bool = False, seed: int | None = 0,
                 extra_body: dict | None = None):
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"`output` must be one of {OUTPUTS}, got {output!r}")
        self.prompts, self.with_prior, self.thinking, self.output = prompts, with_prior, thinking, output
        self.uses_prior = with_prior
        self._client, self._base_url, self._model = client, base_url, model
        self.max_tokens = max_tokens or DEFAULT_MAX_TOKENS[int(thinking)]
        if self.max_tokens < 1:
            raise ConfigError(f"`max_tokens` must be >= 1, got {max_tokens}")
        self.thinking_tokens = thinking_tokens or DEFAULT_THINKING_TOKENS
        if self.thinking_tokens < 1:
            raise ConfigError(f"`thinking_tokens` must be >= 1, got {thinking_tokens}")
        self.thinking_chars = CHARS_PER_TOKEN * self.thinking_tokens if thinking else 0
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
        reply_format = None
        if self.output == "constrained":
            reply_format = self.prompts.action_format(task_view, {}).describe(self.thinking_chars)
        self.messages = [{"role": "system", "content": self.prompts.system(self.thinking, reply_format)},
                         self._user(self.prompts.first(task_view, shown))]
        self.replies = []

    def _reply(self, observation: str, info: dict, **kwargs: Any) -> Any:
        """Send the observation (after the first turn) and return the model's reply, or None when the
        endpoint failed (counted as an error and a parse failure; the turn is consumed)."""
        if info.get("t", 0) > 0:
            self.messages.append(self._user(observation))
        self.count("llm_calls")
        try:
            while True:
                try:
                    reply = self.client.chat(self.messages, temperature=self.temperature,
                                             max_tokens=self.max_tokens, seed=self.llm_seed, **kwargs,
                                             **self.extra_body)
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
        self.count(f"replies_{getattr(reply, 'mode', 'free').replace('-', '_')}")
        if getattr(reply, "reasks", 0):
            self.count("reasks", reply.reasks)
        if getattr(reply, "usage_estimated", False):
            self.count("usage_estimated")
        self.replies.append(reply.text)
        self.messages.append({"role": "assistant", "content": reply.text})
        return reply

    def _drop_oldest_exchange(self) -> bool:
        """Remove the oldest assistant reply and the user turn after it (messages 2 and 3), keeping the
        system prompt, the first user turn and the latest user turn; False when there is nothing to drop."""
        if len(self.messages) < 5:
            return False
        del self.messages[2:4]
        self.count("history_trimmed")
        return True

    def act(self, observation: str, info: dict) -> str:
        if self.output == "free":
            reply = self._reply(observation, info)
            if reply is None:
                return self._failed_reply
            action = (self.prompts.parse_free(reply.text, self.task_view) if self.prompts.parse_free is not None
                      else parse_action(reply.text, self.grammar).action)
            if action is None:
                self.count("parse_failures")
                return reply.text
            return action
        fmt = self.prompts.action_format(self.task_view, info)
        out = fmt.output(self.thinking_chars)
        reply = self._reply(observation, info, structured=out)
        if reply is None:
            return self._failed_reply
        parsed = getattr(reply, "parsed", None)
        if parsed is None and getattr(reply, "mode", "free") == "free":
            # a stand-in client that ignores `structured`: parse its text here
            try:
                parsed = out.parse(reply.text)
            except StructuredError:
                parsed = None
        if parsed is None:
            self.count("parse_failures")
            if getattr(reply, "finish_reason", "") == "length":
                self.count("replies_cut")  # the reply hit max_tokens before its JSON closed
            return reply.text
        return fmt.action(parsed)
