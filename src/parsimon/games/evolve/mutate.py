"""Mutation operators: an LLM returning SEARCH/REPLACE blocks, and a deterministic offline mutator.

Edit format (spec §6.1): one or more blocks ::

    <<<<<<< SEARCH
    exact lines of the parent program
    =======
    replacement lines
    >>>>>>> REPLACE

Every SEARCH chunk must occur in the program; all of its occurrences are replaced (the paper's rule).
Both mutators produce such blocks, so the offline mutator exercises the same applier as the LLM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parsimon.errors import ParsimonError

__all__ = ["EditError", "Edit", "Mutation", "parse_search_replace", "apply_edits", "format_edits",
           "build_prompt", "LLMMutator", "OfflineMutator", "TASK_INSTRUCTION_CFR"]


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


def build_prompt(code: str, previous: list[tuple[str, dict]], *, task_instruction: str = TASK_INSTRUCTION_CFR,
                 focus_sentence: str = FOCUS_SENTENCES[0], lazy_prompt: str = LAZY_PROMPT,
                 trigger_chain_of_thought: str = COT) -> str:
    """The mutation prompt in the paper's structure: prior programs with scores, the parent's code, the
    task, a focus sentence, and the SEARCH/REPLACE answer format."""
    prev = "\n\n".join(
        f"# Prior program {i + 1} (fitness: {', '.join(f'{k}={v:.6g}' for k, v in scores.items())})\n```python\n{src}\n```"
        for i, (src, scores) in enumerate(previous)
    ) or "(none yet)"
    return (
        f"You are improving an algorithm for solving games.\n\n## Task\n{task_instruction}\n\n"
        f"## Previous programs that performed well\n{prev}\n\n"
        f"## Program to improve\n```python\n{code}\n```\n\n"
        f"## Instructions\n{focus_sentence} {lazy_prompt} {trigger_chain_of_thought}\n"
        "Answer with one or more edits in exactly this format (the SEARCH part, at most 4 lines, must match "
        "the program exactly; every occurrence is replaced):\n"
        "<<<<<<< SEARCH\n<lines of the program>\n=======\n<new lines>\n>>>>>>> REPLACE\n"
    )


class LLMMutator:
    """Ask an OpenAI-compatible chat model (``parsimon.llm.ChatClient``) for SEARCH/REPLACE edits.

    Costs are charged to the governance ledger by the client (component ``games.evolve.llm``).
    """

    def __init__(self, client: Any = None, *, temperature: float = 0.8, max_tokens: int = 2048,
                 task_instruction: str = TASK_INSTRUCTION_CFR, **client_kwargs: Any):
        if client is None:
            from parsimon.llm import ChatClient

            client = ChatClient(component="games.evolve.llm", **client_kwargs)
        self.client = client
        self.temperature, self.max_tokens = temperature, max_tokens
        self.task_instruction = task_instruction

    def mutate(self, parent: str, previous: list[tuple[str, dict]], rng: np.random.Generator) -> Mutation:
        focus = FOCUS_SENTENCES[int(rng.integers(len(FOCUS_SENTENCES)))]
        prompt = build_prompt(parent, previous, task_instruction=self.task_instruction, focus_sentence=focus)
        resp = self.client.chat([{"role": "user", "content": prompt}], temperature=self.temperature,
                                max_tokens=self.max_tokens, seed=int(rng.integers(2**31)))
        usage = {"prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens,
                 "cost": resp.cost, "finish_reason": resp.finish_reason}
        stage = "parse"
        try:
            edits = parse_search_replace(resp.text)
            stage = "apply"
            src = apply_edits(parent, edits)
        except EditError as exc:
            # the tokens were spent (and charged to the ledger): keep them, the stage that failed and the
            # reply on the error, for the lineage
            exc.usage, exc.reply, exc.stage = usage, resp.text, stage
            raise
        return Mutation(src, f"llm: {len(edits)} edit(s); {focus}", edits, usage)


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
