"""Answerers: who answers the question (directly, or after reading a retrieved document).

:class:`SimulatedAnswerer` (the default) has a *known* per-question probability of answering correctly
without retrieval, ``p_da = sigmoid(a + b·log popularity)`` (long-tail: popular entities are known),
states a *miscalibrated* verbalised confidence (one decimal, over-confident, as LLMs are), and reads a
retrieved document by finding the stated fact (succeeding with probability ``p_read``). Every draw is a
deterministic function of (seed, question id), so runs repeat exactly.

:class:`LLMAnswerer` asks a chat model (the local model or any OpenAI-compatible endpoint) instead.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

import numpy as np

from parsimon.cta.qa.kb import RELATIONS, KnowledgeBase, Question

__all__ = ["LLMAnswerer", "SimulatedAnswerer", "normalize_answer"]


def normalize_answer(text: str) -> str:
    t = re.sub(r"[^a-z0-9 ]+", " ", str(text).lower())
    t = re.sub(r"\b(the|a|an)\b", " ", t)
    return " ".join(t.split())


def _draws(seed: int, qid: str, n: int = 4) -> np.ndarray:
    return np.random.default_rng([seed, zlib.crc32(qid.encode())]).random(n)


class SimulatedAnswerer:
    """A simulated answerer with known correctness probabilities (see the module docstring).

    Args:
        kb: the knowledge base (for popularities and wrong-answer pools).
        seed: seeds every per-question draw.
        a, b: ``p_da = sigmoid(a + b · log popularity)``.
        p_read: probability of reading a stated fact correctly from a retrieved document.
        overconfidence: verbalised confidence = round(clip(p_da + overconfidence·(1 − p_da) + noise), 1).
    """

    def __init__(self, kb: KnowledgeBase, seed: int = 0, *, a: float = 2.5, b: float = 0.55,
                 p_read: float = 0.85, overconfidence: float = 0.6, noise: float = 0.1):
        if not 0 <= p_read <= 1:
            raise ValueError(f"`p_read` must be in [0, 1], got {p_read}")
        self.kb, self.seed, self.a, self.b = kb, seed, a, b
        self.p_read, self.overconfidence, self.noise = p_read, overconfidence, noise
        self._ent = {e.eid: e for e in kb.entities}

    def p_direct(self, q: Question) -> float:
        pop = self._ent[q.eid].popularity
        return 1.0 / (1.0 + math.exp(-(self.a + self.b * math.log(pop))))

    def _wrong(self, q: Question, u: float) -> str:
        pool = [v for v in RELATIONS[q.relation][1] if v != q.answer]
        return pool[int(u * len(pool)) % len(pool)]

    def direct(self, q: Question) -> str:
        u = _draws(self.seed, q.qid)
        return q.answer if u[0] < self.p_direct(q) else self._wrong(q, u[1])

    def verbal_confidence(self, q: Question) -> float:
        u = _draws(self.seed, q.qid)
        p = self.p_direct(q)
        z = math.sqrt(-2 * math.log(max(u[2], 1e-12))) * math.cos(2 * math.pi * u[3])  # Box-Muller
        v = p + self.overconfidence * (1 - p) + self.noise * z
        return round(min(1.0, max(0.0, v)), 1)

    def fact_in(self, q: Question, passage: str) -> str | None:
        name = self._ent[q.eid].name
        m = re.search(re.escape(f"{name}'s {q.relation} is ") + r"([^.]+)\.", passage)
        return m.group(1) if m else None

    def p_after_read(self, q: Question, passage: str) -> float:
        """Exact probability of a correct answer after reading ``passage``."""
        fact = self.fact_in(q, passage)
        if fact is None:
            return self.p_direct(q)
        return self.p_read * float(fact == q.answer) + (1 - self.p_read) * self.p_direct(q)

    def read(self, q: Question, passage: str) -> str:
        fact = self.fact_in(q, passage)
        u = _draws(self.seed + 1, q.qid)
        if fact is not None and u[0] < self.p_read:
            return fact
        return self.direct(q)


class LLMAnswerer:
    """Answers (and a verbalised confidence, "a single decimal between 0 and 1") from a chat model."""

    def __init__(self, client: Any = None, *, max_tokens: int = 24):
        self._client, self.max_tokens = client, max_tokens
        self._cache: dict[str, str] = {}  # greedy answers are reused, so calibration and tests agree

    @property
    def client(self) -> Any:
        if self._client is None:
            from parsimon.llm import ChatClient

            self._client = ChatClient(component="cta.qa.answerer")
        return self._client

    def _ask(self, prompt: str) -> str:
        if prompt not in self._cache:
            reply = self.client.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens,
                                     temperature=0.0)
            self._cache[prompt] = reply.text.strip()
        return self._cache[prompt]

    def direct(self, q: Question) -> str:
        return self._ask(f"Answer with a short phrase only.\nQuestion: {q.question}\nAnswer:").split("\n")[0]

    def read(self, q: Question, passage: str) -> str:
        return self._ask(f"Use the document to answer with a short phrase only.\nDocument: {passage}\n"
                         f"Question: {q.question}\nAnswer:").split("\n")[0]

    def verbal_confidence(self, q: Question) -> float:
        text = self._ask(f"Question: {q.question}\nHow likely are you to answer this correctly? "
                         "Reply with a single decimal between 0 and 1.")
        m = re.search(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)(?![\d.])", text)
        return float(m.group(1)) if m else 0.5
