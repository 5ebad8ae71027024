"""A robust action parser for LLM replies.

Replies may contain reasoning (``<think>...</think>``, an unterminated ``<think>`` cut by the token
limit, free text) before the action. The parser looks, in order, at: the text after the last
``</think>``; the text after the last ``Action:`` marker; the whole reply without reasoning. In each it
takes the *last* match of the grammar's patterns (models often restate options before choosing).
Markdown emphasis, backticks and quotes around the action are ignored.

A parse failure returns ``ParseResult(action=None, reason=...)``. As in the paper, the agent then sends
its raw reply to the environment, which answers with an error message and consumes the turn; the
failure is counted in the agent's ``parse_failures``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ActionGrammar", "ParseResult", "parse_action", "strip_thinking"]

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MARKUP = re.compile(r"[*_`\"]")


@dataclass(frozen=True)
class ActionGrammar:
    """The actions an environment accepts: ``patterns`` are (regex, formatter) pairs; the formatter maps
    the match to the canonical action text. ``labels`` (optional) restricts a ``label`` group."""

    patterns: tuple[tuple[str, str], ...]
    labels: tuple[str, ...] = ()

    @staticmethod
    def pandora(labels: list[str] | tuple[str, ...]) -> ActionGrammar:
        return ActionGrammar(((r"\b(?P<kind>VERIFY|GUESS)\s*[:\-]?\s*(?:box\s+|bag\s+|option\s+)?\(?(?P<label>[A-Za-z])\b",
                               "{kind} {label}"),), tuple(labels))

    @staticmethod
    def qa() -> ActionGrammar:
        return ActionGrammar(((r"\b(?P<kind>RETRIEVE)\b", "RETRIEVE"),
                              (r"\bANSWER\s*[:\-]\s*(?P<text>[^\n]+)", "ANSWER: {text}")))


@dataclass(frozen=True)
class ParseResult:
    action: str | None
    reason: str = ""


def strip_thinking(text: str) -> str:
    """The reply without reasoning: drop ``<think>`` blocks; an unterminated ``<think>`` drops the rest."""
    text = _THINK_BLOCK.sub(" ", text)
    low = text.lower()
    if "<think>" in low:
        text = text[: low.index("<think>")]
    return text


def _last_match(text: str, grammar: ActionGrammar) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    labels = {lab.upper(): lab for lab in grammar.labels}
    for regex, fmt in grammar.patterns:
        for m in re.finditer(regex, text, re.IGNORECASE):
            groups = {k: (v or "").strip() for k, v in m.groupdict().items()}
            if "kind" in groups:
                groups["kind"] = groups["kind"].upper()
            if "label" in groups and labels:
                lab = labels.get(groups["label"].upper())
                if lab is None:
                    continue
                groups["label"] = lab
            if "text" in groups and not groups["text"]:
                continue
            if best is None or m.start() >= best[0]:
                best = (m.start(), fmt.format(**groups))
    return best


def parse_action(text: str, grammar: ActionGrammar) -> ParseResult:
    """Parse one action from an LLM reply (see the module docstring for the order of places tried)."""
    if not isinstance(text, str) or not text.strip():
        return ParseResult(None, "empty reply")
    candidates = []
    low = text.lower()
    if "</think>" in low:
        candidates.append(text[low.rindex("</think>") + len("</think>"):])
    clean = strip_thinking(text)
    m = list(re.finditer(r"action\s*:", clean, re.IGNORECASE))
    if m:
        candidates.append(clean[m[-1].end():])
    candidates.append(clean)
    for cand in candidates:
        found = _last_match(_MARKUP.sub("", cand), grammar)
        if found is not None:
            return ParseResult(found[1])
    if "<think>" in low and "</think>" not in low:
        return ParseResult(None, "the reply stopped inside <think> (token limit) before an action")
    return ParseResult(None, "no valid action in the reply")
