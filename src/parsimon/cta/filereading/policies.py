"""Scripted FILEREADING policies: the Bayes-optimal planner (the "act" half of calibrate-then-act) and
the paper's static baselines.

* ``cta-planner`` — :class:`~parsimon.cta.filereading.planner.FormatPlanner` with the chosen prior source;
* ``oracle`` — the same planner with the true (data-generating) prior of the filename;
* ``uniform-prior`` — the planner with a uniform prior (cost-aware, no calibration);
* ``test-then-code`` — ``UNIT_TESTS`` of all three attributes, then CODE, then ANSWER (the paper's static
  "3×Test→Code");
* ``code-first`` — CODE with the argmax-prior format at once; if it fails, test all three, CODE, ANSWER.

All of them write real pandas code (:func:`~parsimon.cta.filereading.generator.solution_code`) that the
environment executes in the sandbox, and read the answer from its output (``RESULT: <value>``).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any

from parsimon.cta.base import Policy
from parsimon.cta.filereading.generator import solution_code
from parsimon.cta.filereading.planner import FormatPlanner
from parsimon.cta.filereading.prior import (
    ATTRS,
    CONFIGS,
    argmax_format,
    true_prior,
    uniform_prior,
    validate_prior,
)

__all__ = ["CodeFirstPolicy", "OraclePolicy", "PlannerPolicy", "TestThenCodePolicy", "UniformPlannerPolicy",
           "result_of"]

_RESULT = re.compile(r"^RESULT:\s*(.*)$", re.MULTILINE)


def result_of(stdout: str) -> str | None:
    """The value printed as ``RESULT: <value>`` (the last one), or None."""
    found = _RESULT.findall(stdout or "")
    return found[-1].strip() if found else None


def _tests_action(view: dict, attrs: list[str]) -> str:
    f = view["filename"]
    return "UNIT_TESTS: " + ", ".join(f'test_{a}("{f}")' for a in attrs)


def _code_action(view: dict, fmt: tuple) -> str:
    fmt = tuple(fmt)
    return "CODE\n```python\n" + solution_code(view["filename"], fmt, view["instruction"], view["query_type"]) + "```"


class _Scripted(Policy):
    """Shared bookkeeping: the answer once a CODE printed one, the format values tests revealed."""

    def __init__(self, max_turns: int = 8):
        super().__init__()
        self.max_turns = max_turns

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        self.known: dict[str, Any] = {}
        self.answer: str | None = None
        self.t = 0
        self.coded: list[tuple] = []

    def _observe(self, info: dict) -> bool | None:
        """Update from the last step's info; returns the CODE outcome (None if the last action was no CODE)."""
        self.known.update(info.get("tests") or {})
        if "code_ok" in info:
            if info["code_ok"]:
                res = result_of(info.get("stdout", ""))
                if res is not None:
                    self.answer = res
                    return True
            return False
        return None

    def act(self, observation: str, info: dict) -> str:
        self._observe(info)
        self.t = info.get("t", self.t)
        if self.answer is not None:
            return f"ANSWER: {self.answer}"
        return self._next(info)

    @abstractmethod
    def _next(self, info: dict) -> str:
        """The next command while no answer is known."""


class PlannerPolicy(_Scripted):
    """Acts by the Bayes-optimal plan for the given prior (re-planned from the current state each turn)."""

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        pr = self._prior(task_view, prior)
        self.planner = FormatPlanner(pr, task_view["d_unit"], task_view["d_code"], max_turns=self.max_turns)
        self.mask = self.planner.full
        self.pending: Any = None

    def _prior(self, view: dict, prior: Any) -> dict:
        if prior is None:
            raise ValueError("the cta-planner needs a prior (choose a prior source, e.g. prior='estimated')")
        return validate_prior(prior)

    def _next(self, info: dict) -> str:
        if self.pending is not None:
            if self.pending.kind == "code" and info.get("code_ok") is False:
                self.mask &= ~(1 << self.pending.config)
                self.count("failed_codes")
            elif self.pending.kind == "test" and info.get("tests"):
                attrs = [a for a in self.pending.attrs if ATTRS[a] in info["tests"]]
                self.mask = self.planner.observe_test(self.mask, attrs, [info["tests"][ATTRS[a]] for a in attrs])
        turns_left = max(0, self.max_turns - self.t)
        _, a = self.planner.solve(self.mask, turns_left)
        self.pending = a
        if a.kind == "code":
            return _code_action(self.task_view, CONFIGS[a.config])
        if a.kind == "test":
            return _tests_action(self.task_view, [ATTRS[i] for i in a.attrs])
        self.count("gave_up")
        return "ANSWER: unknown"


class OraclePolicy(PlannerPolicy):
    """The planner with the true log-linear prior of the filename's features, whatever prior is chosen."""

    def _prior(self, view: dict, prior: Any) -> dict:
        return true_prior(view["features"])


class UniformPlannerPolicy(PlannerPolicy):
    """The planner with a uniform prior: cost-aware but uncalibrated."""

    def _prior(self, view: dict, prior: Any) -> dict:
        return uniform_prior()


class TestThenCodePolicy(_Scripted):
    """Test all three attributes in one action, then CODE with the revealed format, then ANSWER."""

    def _next(self, info: dict) -> str:
        if all(a in self.known for a in ATTRS):
            fmt = tuple(self.known[a] for a in ATTRS)
            if fmt in self.coded:  # the right format failed (e.g. a sandbox limit): nothing left to try
                return "ANSWER: unknown"
            self.coded.append(fmt)
            return _code_action(self.task_view, fmt)
        return _tests_action(self.task_view, [a for a in ATTRS if a not in self.known])


class CodeFirstPolicy(_Scripted):
    """CODE with the argmax-prior format first ("guess and go"); on failure test all three, then CODE."""

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        if prior is None:
            raise ValueError("code-first needs a prior (choose a prior source, e.g. prior='estimated')")
        self.guess = argmax_format(prior)

    def _next(self, info: dict) -> str:
        if not self.coded:
            self.coded.append(self.guess)
            return _code_action(self.task_view, self.guess)
        if all(a in self.known for a in ATTRS):
            fmt = tuple(self.known[a] for a in ATTRS)
            if fmt in self.coded:
                return "ANSWER: unknown"
            self.coded.append(fmt)
            return _code_action(self.task_view, fmt)
        return _tests_action(self.task_view, [a for a in ATTRS if a not in self.known])


# ---------------------------------------------------------------------------------------------------
# LLM agents (PROMPTED / CTA-PROMPTED) on FILEREADING, through cta-core's LLMAgent


def _fr_system(thinking: bool, reply_format: str | None = None) -> str:
    base = (
        "You answer a question about a CSV file by writing pandas code. The file's format is unknown: its "
        "delimiter is one of ',', ';', '\\t'; its quote character is '\"' or \"'\"; it may have one junk line "
        "before the header (skiprows 0 or 1). Only the exactly right settings read the file.\n"
        "Each turn, take exactly one action:\n"
        "- UNIT_TESTS: test_delimiter(\"<file>\"), test_quotechar(\"<file>\"), test_skiprows(\"<file>\") — any "
        "of the three; each returns the true value. Every test counts once in U.\n"
        "- CODE followed by a ```python``` block: it runs on the file; you see stdout and stderr. Every CODE "
        "counts once in C. It runs as a fresh script: import what you use (`import pandas as pd`).\n"
        "- ANSWER: <answer> — ends the episode.\n"
        "Reward: correct × d_unit^U × d_code^C. If d_code = d_unit^k, one CODE costs about k UNIT_TESTS. "
        "Test only when the expected saving outweighs the cost; print the result of your code.\n")
    if reply_format is not None:
        if thinking:
            return base + (f"Reply with {reply_format}. Think briefly in the thinking field, then give the action.")
        return base + f"Reply with only {reply_format}."
    if thinking:
        return base + "Think briefly, then end with your action (UNIT_TESTS: ..., CODE + code block, or ANSWER: ...)."
    return base + "Reply with the action only, no explanation."


def _fmt_prior(prior: dict) -> str:
    def one(a: str) -> str:
        return "{" + ", ".join(f"{o!r}: {prior[a][o]:.3f}" for o in prior[a]) + "}"

    return ", ".join(f"{a}: {one(a)}" for a in ATTRS)


def _fr_first(view: dict, prior: dict | None) -> str:
    lines = [f"File: {view['filename']}", f"Task: {view['instruction']}",
             f"Costs: d_unit = {view['d_unit']}, d_code = {view['d_code']:.4g}",
             f"- Note: d_code = d_unit^{view['rho']:g}"]
    lines.append(f"Format likelihoods: {_fmt_prior(validate_prior(prior))}" if prior is not None
                 else "No format likelihoods are provided.")
    lines.append("Choose your action.")
    return "\n".join(lines)


def _fr_parse_free(text: str, view: dict) -> str | None:
    # The environment's own parser decides (code blocks need their backticks); the reply is sent as it is.
    from parsimon.cta.filereading.env import parse_action as env_parse

    return text if env_parse(text) is not None else None


def _fr_format(view: dict, info: dict) -> Any:
    from parsimon.cta.filereading.env import action_format

    return action_format(view["filename"])


def filereading_prompts() -> Any:
    """The FILEREADING :class:`~parsimon.cta.agents.llm.PromptSet` (prompts, free parser, action space)."""
    from parsimon.cta.agents.llm import PromptSet
    from parsimon.cta.agents.parser import ActionGrammar

    return PromptSet(_fr_system, _fr_first, lambda view: ActionGrammar.qa(), _fr_format, _fr_parse_free)


# Completion tokens per turn: (non-thinking, thinking); a structured CODE action holds a whole program.
FR_MAX_TOKENS = (384, 1024)


def make_llm_agent(*, with_prior: bool, thinking: bool, **kw: Any) -> Policy:
    """A FILEREADING LLM agent: cta-core's :class:`LLMAgent` with FILEREADING prompts and action space. In free
    mode replies are validated with the environment's own parser and sent as they are; an unparseable reply
    still goes to the environment (error message, turn consumed) and is counted in ``parse_failures``."""
    from parsimon.cta.agents.llm import LLMAgent

    kw["max_tokens"] = kw.get("max_tokens") or FR_MAX_TOKENS[int(thinking)]
    return LLMAgent(prompts=filereading_prompts(), with_prior=with_prior, thinking=thinking, **kw)
