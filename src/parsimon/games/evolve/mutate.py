"""Mutation operators: an LLM returning SEARCH/REPLACE blocks, and a deterministic offline mutator.

Edit format (spec §6.1): one or more blocks ::

    <<<<<<< SEARCH
    exact lines of the parent program
    =======
    replacement lines
    >>>>>>> REPLACE

Every SEARCH chunk must occur in the program; all of its occurrences are replaced (the paper's rule).
Both mutators produce such blocks, so the offline mutator exercises the same applier as the LLM.

The LLM mutator asks for the edits as JSON by default (``output="constrained"``):
``{"thinking": "...", "edits": [{"search": ..., "replace": ...}]}``, where ``search`` is constrained to an
enum of the parent's *snippets*: every run of one to three consecutive non-blank lines, exactly as they
stand (indentation included). Why an enum of snippets rather than a grammar of all substrings: the
substrings of a program form a regular language, but its grammar needs a rule per state of the program's
suffix automaton (thousands for a 1,000-character program) and lets a SEARCH start or end mid-token, while
the snippets of a 30-100 line program are a few dozen to a few hundred strings, which a JSON schema (OpenAI,
llama.cpp) and the GBNF grammar derived from it both express, and which are what SEARCH blocks hold in
practice. A constrained SEARCH therefore always occurs in the parent; the second of two edits can still
miss when the first one rewrote its lines (stage ``apply``). ``output="free"`` keeps the paper's text
blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parsimon.errors import ConfigError, ParsimonError
from parsimon.llm.structured import OUTPUT_MODES as OUTPUTS

__all__ = ["EditError", "Edit", "Mutation", "parse_search_replace", "apply_edits", "format_edits",
           "build_prompt", "edit_output", "search_snippets", "LLMMutator", "OfflineMutator", "OUTPUTS",
           "TASK_INSTRUCTION_CFR"]

MAX_SEARCH_LINES = 3  # a SEARCH snippet spans at most this many lines (the prompt asks for at most 4)
MAX_EDITS = 2
REPLACE_CHARS = 800  # about 200 tokens of new code per edit
THINKING_TOKENS = 300  # cap on the thinking field (about four characters a token)


class EditError(ParsimonError, ValueError):
    """A SEARCH/REPLACE reply is malformed or does not apply to the parent program."""


@dataclass
class Edit:
    search: str
    replace: str


@dataclass
class Mutation:
    source: str
    description: str
    edits: list[Edit] = field(default_factory=list)
    usage: dict = field(default_factory=dict)


_BLOCK = re.compile(r"<{5,}\s*SEARCH[^\n]*\n(.*?)\n?={5,}[^\n]*\n(.*?)\n?>{5,}\s*REPLACE", re.DOTALL)


def parse_search_replace(text: str) -> list[Edit]:
    """All SEARCH/REPLACE blocks of ``text`` (an LLM reply), in order. Raises :class:`EditError` if none."""
    edits = [Edit(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    if not edits:
        raise EditError("the reply contains no <<<<<<< SEARCH / ======= / >>>>>>> REPLACE block")
    for i, e in enumerate(edits):
        if not e.search.strip():
            raise EditError(f"SEARCH block {i} is empty")
    return edits


def apply_edits(source: str, edits: list[Edit]) -> str:
    """Apply ``edits`` in order (each replaces every occurrence of its SEARCH text)."""
    out = source
    for i, e in enumerate(edits):
        if e.search not in out:
            # tolerate trailing-whitespace differences only
            stripped = "\n".join(line.rstrip() for line in e.search.splitlines())
            if stripped and stripped in out:
                e = Edit(stripped, e.replace)
            else:
                raise EditError(f"SEARCH block {i} does not match the program exactly: {e.search[:120]!r}")
        out = out.replace(e.search, e.replace)
    return out


def format_edits(edits: list[Edit]) -> str:
    return "\n".join(f"<<<<<<< SEARCH\n{e.search}\n=======\n{e.replace}\n>>>>>>> REPLACE" for e in edits)


TASK_INSTRUCTION_CFR = (
    "The program defines three classes used by a counterfactual regret minimisation (CFR) solver for "
    "imperfect-information games: RegretAccumulator.update_accumulate_regret, "
    "PolicyFromRegretAccumulator.get_updated_current_policy and PolicyAccumulator.update_accumulate_policy. "
    "Each is called once per information state and iteration (iteration_number counts from 0) and returns a "
    "dict from legal action to float. The solver's average policy is the normalised accumulated policy. "
    "Fitness is minus the exploitability of the average policy after a fixed number of iterations on "
    "several games (lower exploitability is better)."
)

LAZY_PROMPT = "Do not simply restate the program: make a real algorithmic change."
FOCUS_SENTENCES = (
    "Focus on how regrets are accumulated and discounted.",
    "Focus on how the current policy is derived from the regrets (e.g. optimism or prediction).",
    "Focus on how the average policy is weighted over iterations.",
)
COT = "Think step by step about why the change should lower exploitability before writing the edit."
_TEXT_FORMAT = (
    "Answer with one or more edits in exactly this format (the SEARCH part, at most 4 lines, must match "
    "the program exactly; every occurrence is replaced):\n"
    "<<<<<<< SEARCH\n<lines of the program>\n=======\n<new lines>\n>>>>>>> REPLACE\n"
)
_JSON_FORMAT = (
    'Answer with only a JSON object {"thinking": "<your reasoning>", "edits": [{"search": "<one to three '
    'consecutive lines copied exactly from the program, indentation included>", "replace": "<the new lines>"}]} '
    "with one or two edits; every occurrence of a search text is replaced.\n"
)


def search_snippets(source: str, max_lines: int = MAX_SEARCH_LINES) -> list[str]:
    """Every run of 1..``max_lines`` consecutive non-blank lines of ``source`` (as they stand, without the
    final newline), in order of first appearance, each once."""
    if max_lines < 1:
        raise ConfigError(f"`max_lines` must be >= 1, got {max_lines}")
    lines = source.splitlines()
    out: dict[str, None] = {}
    for i in range(len(lines)):
        for n in range(1, max_lines + 1):
            window = lines[i:i + n]
            if len(window) < n or any(not ln.strip() for ln in window):
                break
            out.setdefault("\n".join(window), None)
    return list(out)


def edit_output(parent: str, *, max_edits: int = MAX_EDITS, replace_chars: int = REPLACE_CHARS,
                thinking_chars: int = 4 * THINKING_TOKENS) -> Any:
    """The reply shape for mutating ``parent``: a capped ``thinking`` field (when ``thinking_chars`` > 0),
    then 1..``max_edits`` edits whose ``search`` is one of :func:`search_snippets` of the parent."""
    from parsimon.llm.structured import StructuredOutput

    snippets = search_snippets(parent)
    if not snippets:
        raise EditError("the parent program has no non-blank line to edit")
    edit = {"type": "object", "properties": {"search": {"type": "string", "enum": snippets},
                                              "replace": {"type": "string", "maxLength": replace_chars}},
            "required": ["search", "replace"], "additionalProperties": False}
    props: dict[str, Any] = {}
    if thinking_chars > 0:
        props["thinking"] = {"type": "string", "maxLength": thinking_chars}
    props["edits"] = {"type": "array", "items": edit, "minItems": 1, "maxItems": max_edits}
    schema = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    return StructuredOutput(schema, name="search_replace_edits", description=_JSON_FORMAT.strip())


def build_prompt(code: str, previous: list[tuple[str, dict]], *, task_instruction: str = TASK_INSTRUCTION_CFR,
                 focus_sentence: str = FOCUS_SENTENCES[0], lazy_prompt: str = LAZY_PROMPT,
                 trigger_chain_of_thought: str = COT, output: str = "free") -> str:
    """The mutation prompt in the paper's structure: prior programs with scores, the parent's code, the
    task, a focus sentence, and the answer format (SEARCH/REPLACE text blocks, or the JSON edits of
    ``output="constrained"``)."""
    prev = "\n\n".join(
        f"# Prior program {i + 1} (fitness: {', '.join(f'{k}={v:.6g}' for k, v in scores.items())})\n```python\n{src}\n```"
        for i, (src, scores) in enumerate(previous)
    ) or "(none yet)"
    return (
        f"You are improving an algorithm for solving games.\n\n## Task\n{task_instruction}\n\n"
        f"## Previous programs that performed well\n{prev}\n\n"
        f"## Program to improve\n```python\n{code}\n```\n\n"
        f"## Instructions\n{focus_sentence} {lazy_prompt} {trigger_chain_of_thought}\n"
        + (_JSON_FORMAT if output == "constrained" else _TEXT_FORMAT)
    )


class LLMMutator:
    """Ask an OpenAI-compatible chat model (``parsimon.llm.ChatClient``) for SEARCH/REPLACE edits.

    Args:
        client: a chat client (default: one built from ``client_kwargs``).
        output: ``constrained`` (JSON edits whose SEARCH is a snippet of the parent; default) or ``free``
            (the paper's text blocks); see the module docstring.
        thinking_tokens: cap on the constrained reply's thinking field (0: no thinking field).
        temperature / max_tokens: sampling settings of each request.

    Costs are charged to the governance ledger by the client (component ``games.evolve.llm``); each
    mutation's ``usage`` also says which output mode the endpoint gave (``mode``) and whether it was re-asked.
    """

    def __init__(self, client: Any = None, *, temperature: float = 0.8, max_tokens: int = 2048,
                 task_instruction: str = TASK_INSTRUCTION_CFR, output: str = "constrained",
                 thinking_tokens: int = THINKING_TOKENS, **client_kwargs: Any):
        if output not in OUTPUTS:
            raise ConfigError(f"`output` must be one of {OUTPUTS}, got {output!r}")
        if thinking_tokens < 0:
            raise ConfigError(f"`thinking_tokens` must be >= 0, got {thinking_tokens}")
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(component="games.evolve.llm", **client_kwargs)
        self.client = client
        self.temperature, self.max_tokens = temperature, max_tokens
        self.task_instruction, self.output, self.thinking_tokens = task_instruction, output, thinking_tokens

    def mutate(self, parent: str, previous: list[tuple[str, dict]], rng: np.random.Generator) -> Mutation:
        focus = FOCUS_SENTENCES[int(rng.integers(len(FOCUS_SENTENCES)))]
        prompt = build_prompt(parent, previous, task_instruction=self.task_instruction, focus_sentence=focus,
                              output=self.output)
        kwargs: dict[str, Any] = {}
        out = None
        if self.output == "constrained":
            out = edit_output(parent, thinking_chars=4 * self.thinking_tokens)
            kwargs["structured"] = out
        resp = self.client.chat([{"role": "user", "content": prompt}], temperature=self.temperature,
                                max_tokens=self.max_tokens, seed=int(rng.integers(2**31)), **kwargs)
        usage = {"prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens,
                 "cost": resp.cost, "finish_reason": resp.finish_reason, "mode": getattr(resp, "mode", "free"),
                 "reasks": getattr(resp, "reasks", 0)}
        stage = "parse"
        try:
            edits = self._edits(resp, out)
            stage = "apply"
            src = apply_edits(parent, edits)
        except EditError as exc:
            # the tokens were spent (and charged to the ledger): keep them, the stage that failed and the
            # reply on the error, for the lineage
            exc.usage, exc.reply, exc.stage = usage, resp.text, stage
            raise
        return Mutation(src, f"llm: {len(edits)} edit(s); {focus}", edits, usage)

    @staticmethod
    def _edits(resp: Any, out: Any) -> list[Edit]:
        if out is None:
            return parse_search_replace(resp.text)
        parsed = getattr(resp, "parsed", None)
        if parsed is None and getattr(resp, "mode", "free") == "free":  # a client that ignores `structured`
            from parsimon.llm.structured import StructuredError

            try:
                parsed = out.parse(resp.text)
            except StructuredError as exc:
                raise EditError(f"the reply is not the requested JSON edits: {exc}") from exc
        if parsed is None:
            raise EditError(f"the reply is not the requested JSON edits: {getattr(resp, 'parse_error', '')}")
        return [Edit(e["search"], e["replace"]) for e in parsed["edits"]]


# --------------------------------------------------------------------------------------- offline mutator
_NUM = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")
_FACTORS = (0.5, 0.8, 1.25, 1.5, 2.0)
# structural rewrites known from the CFR literature, expressed as exact SEARCH/REPLACE pairs on the
# seed's code (they apply only where the text occurs)
_REWRITES = (
    ("quadratic averaging weight", "w = (iteration_number + 1) * reach_prob",
     "w = (iteration_number + 1) ** 2.0 * reach_prob"),
    ("optimistic policy (predict the last regret)",
     "pos = {a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0)) for a in acts}",
     "pos = {a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + 1.0 * cfr_regrets[a]) for a in acts}"),
    ("discount positive regrets",
     "a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])",
     "a: max(0.0, 0.999 * info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])"),
)


class OfflineMutator:
    """A deterministic mutator for tests and offline runs (no LLM): with the generator it is given, it
    either applies one structural rewrite that still applies to the parent, or multiplies one decimal
    constant of the program (outside docstrings/comments) by a factor in {0.5, 0.8, 1.25, 1.5, 2}.
    The change is expressed as a SEARCH/REPLACE edit and applied with :func:`apply_edits`."""

    def mutate(self, parent: str, previous: list[tuple[str, dict]], rng: np.random.Generator) -> Mutation:
        options: list[tuple[str, Edit]] = []
        for name, search, replace in _REWRITES:
            if search in parent:
                options.append((f"offline: {name}", Edit(search, replace)))
        lines = parent.splitlines()
        in_doc = False
        for i, line in enumerate(lines):
            s = line.strip()
            if s.count('"""') == 1 or s.count("'''") == 1:
                in_doc = not in_doc
                continue
            if in_doc or s.startswith("#") or '"""' in s:
                continue
            code = line.split("#", 1)[0]
            for m in _NUM.finditer(code):
                if m.group(1) in ("0.0", "1.0"):
                    continue  # structural constants (floors, defaults)
                options.append((f"offline: scale constant {m.group(1)} on line {i + 1}", Edit(line, "")))
        if not options:
            raise EditError("offline mutator: no applicable rewrite or tunable constant in the program")
        desc, edit = options[int(rng.integers(len(options)))]
        if edit.replace == "" and desc.startswith("offline: scale"):
            line = edit.search
            nums = [m for m in _NUM.finditer(line.split("#", 1)[0]) if m.group(1) not in ("0.0", "1.0")]
            m = nums[int(rng.integers(len(nums)))]
            f = _FACTORS[int(rng.integers(len(_FACTORS)))]
            new_val = f"{float(m.group(1)) * f:.6g}"
            if "." not in new_val and "e" not in new_val:
                new_val += ".0"
            edit = Edit(line, line[: m.start(1)] + new_val + line[m.end(1):])
            desc = f"{desc} x{f} -> {new_val}"
        src = apply_edits(parent, [edit])
        return Mutation(src, desc, [edit])
