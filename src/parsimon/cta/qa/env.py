"""QA with optional retrieval: answer now (t = 0) or RETRIEVE once and answer (t = 1); reward γ^t·correct.

A :class:`QABench` holds the generated knowledge base, the BM25 retriever, the answerer and the
question set split into validation and test halves. On the validation half it fits the verbalised-
confidence calibrator (isotonic by default, as the paper) and estimates ``p_ret`` (one number, as the
paper). Each task carries its true probabilities (``p_da``, ``p_ret_true``, exact for the simulated
answerer) and the estimates (``k_da``, ``p_ret``), so the prior sources can hand out either.

Optimal rule (the "act" half): retrieve iff ``p_ret · γ >= k_da``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.cta.base import CTAEnv, Policy
from parsimon.cta.calibration import expected_calibration_error, fit_calibrator
from parsimon.cta.qa.answerer import SimulatedAnswerer, normalize_answer
from parsimon.cta.qa.kb import KnowledgeBase, Question, generate_kb
from parsimon.cta.qa.retriever import BM25
from parsimon.cta.registry import (
    EnvSpec,
    register_env,
    register_llm_policies,
    register_policy,
    register_prior,
)
from parsimon.cta.taskfile import build_tasks, read_records

__all__ = ["QABench", "QAEnv", "QATask", "bench_of", "generate_tasks", "get_bench", "load_tasks", "optimal_decision",
           "save_tasks"]

GAMMA_RANGE = (0.1, 0.65)


@dataclass
class QATask:
    task_id: str
    question: str
    answer: str
    gamma: float
    p_da: float  # true P(correct) answering directly
    p_ret_true: float  # true P(correct) after retrieving (this question, this retriever)
    k_da: float  # calibrated verbalised confidence (estimate of p_da)
    verbal: float  # raw verbalised confidence
    p_ret: float  # p_ret estimated on the validation split (one number)
    bench_seed: int = 0
    n_entities: int = 1000
    bench_id: str = ""  # "" = the simulated benchmark for (bench_seed, n_entities)

    def public(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "question": self.question, "gamma": self.gamma}


def optimal_decision(k_da: float, p_ret: float, gamma: float) -> str:
    """``"RETRIEVE"`` iff ``p_ret · γ >= k_da`` else ``"ANSWER"``."""
    return "RETRIEVE" if p_ret * gamma >= k_da else "ANSWER"


_BENCHES: dict[str, QABench] = {}


class QABench:
    """The knowledge base, retriever, answerer, splits and fitted estimates for one seed.

    Args:
        n_entities: size of the generated knowledge base (one question per entity, split val/test 50/50).
        seed: seeds the knowledge base, the split and the simulated answerer.
        calibrator: ``isotonic`` (the paper's), ``platt`` or ``histogram``.
        answerer: who answers; default the :class:`SimulatedAnswerer` (true probabilities known, the
            oracle is exact). An :class:`LLMAnswerer` makes the local (or any) model answer and state its
            confidence; then the true probabilities are unknown (no ``true`` prior, no match rate).
        n_val / n_test: use only the first questions of each split (LLM answerers are slow).
        bench_id: the name tasks use to find this benchmark in this process (default derived).
    """

    def __init__(self, n_entities: int = 1000, seed: int = 0, *, calibrator: str = "isotonic",
                 answerer: Any = None, n_val: int | None = None, n_test: int | None = None,
                 bench_id: str | None = None):
        self.seed, self.n_entities = seed, n_entities
        self.kb: KnowledgeBase = generate_kb(n_entities, seed)
        self.retriever = BM25([d.text for d in self.kb.documents])
        self.simulated = answerer is None or isinstance(answerer, SimulatedAnswerer)
        self.answerer = answerer if answerer is not None else SimulatedAnswerer(self.kb, seed)
        if self.simulated and bench_id is None and n_val is None and n_test is None:
            self.bench_id = ""
        else:
            self.bench_id = bench_id or f"bench-{seed}-{n_entities}-{id(self):x}"
        self.questions = {q.qid: q for q in self.kb.questions}
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.kb.questions))
        half = len(order) // 2
        self.val = [self.kb.questions[i] for i in order[:half]][:n_val]
        self.test = [self.kb.questions[i] for i in order[half:]][:n_test]
        a = self.answerer

        def direct_correct(qs: list[Question]) -> np.ndarray:
            return np.array([float(normalize_answer(a.direct(q)) == normalize_answer(q.answer)) for q in qs])

        # calibration on the validation split: raw verbalised confidence vs realised direct correctness
        verbal = np.array([a.verbal_confidence(q) for q in self.val])
        correct = direct_correct(self.val)
        self.calibrator = fit_calibrator(calibrator, verbal, correct)
        self.val_verbal, self.val_correct = verbal, correct
        # calibration error measured on the held-out test split
        self.test_verbal = np.array([a.verbal_confidence(q) for q in self.test])
        self.test_correct = direct_correct(self.test)
        self.ece_raw = expected_calibration_error(self.test_verbal, self.test_correct)
        self.ece_cal = expected_calibration_error(self.calibrator.predict(self.test_verbal), self.test_correct)
        ret_correct = [float(normalize_answer(a.read(q, self.retrieve(q.question))) == normalize_answer(q.answer))
                       for q in self.val]
        self.p_ret = float(np.mean(ret_correct))
        if self.bench_id:
            _BENCHES[self.bench_id] = self

    def retrieve(self, query: str) -> str:
        idx, _ = self.retriever.search(query, 1)[0]
        return self.kb.documents[idx].text

    def task(self, q: Question, gamma: float) -> QATask:
        a = self.answerer
        verbal = a.verbal_confidence(q)
        if self.simulated:
            p_da, p_ret_true = a.p_direct(q), a.p_after_read(q, self.retrieve(q.question))
        else:
            p_da = p_ret_true = float("nan")
        return QATask(task_id=q.qid, question=q.question, answer=q.answer, gamma=float(gamma),
                      p_da=p_da, p_ret_true=p_ret_true,
                      k_da=float(self.calibrator.predict([verbal])[0]), verbal=verbal, p_ret=self.p_ret,
                      bench_seed=self.seed, n_entities=self.n_entities, bench_id=self.bench_id)

    def tasks(self, n: int | None = None, seed: int = 0, split: str = "test") -> list[QATask]:
        if split not in ("test", "val"):
            raise ValueError(f"`split` must be 'test' or 'val', got {split!r}")
        qs = self.test if split == "test" else self.val
        if n is not None:
            if n > len(qs):
                raise ValueError(f"asked for {n} tasks but the {split} split has {len(qs)}; use more entities")
            qs = qs[:n]
        rng = np.random.default_rng([seed, 7])
        gammas = rng.uniform(*GAMMA_RANGE, size=len(qs))
        return [self.task(q, round(float(g), 2)) for q, g in zip(qs, gammas, strict=True)]


@lru_cache(maxsize=4)
def get_bench(seed: int = 0, n_entities: int = 1000) -> QABench:
    """The (cached) simulated benchmark for a seed and size."""
    return QABench(n_entities, seed)


def bench_of(task: QATask) -> QABench:
    """The benchmark a task belongs to (built on demand for the simulated one)."""
    if not task.bench_id:
        return get_bench(task.bench_seed, task.n_entities)
    bench = _BENCHES.get(task.bench_id)
    if bench is None:
        raise ValueError(f"QA benchmark {task.bench_id!r} (an LLM-answerer benchmark) is not loaded in this "
                         "process; build it with QABench(..., answerer=..., bench_id=...) first")
    return bench


def generate_tasks(n: int = 200, seed: int = 0, *, n_entities: int | None = None) -> list[QATask]:
    """``n`` test-split tasks of the benchmark for ``seed`` (γ ~ U[0.1, 0.65], seeded)."""
    if n < 1:
        raise ValueError(f"`n` must be >= 1, got {n}")
    n_entities = n_entities or max(1000, 2 * n + 2)
    return get_bench(seed, n_entities).tasks(n, seed)


def save_tasks(tasks: list[QATask], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(t)) + "\n" for t in tasks))
    return path


def _task_from_dict(d: dict[str, Any], idx: int) -> QATask:
    task = QATask(**d)
    for name in ("gamma", "p_da", "p_ret_true", "k_da", "verbal", "p_ret"):
        value = getattr(task, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")
    return task


def load_tasks(path: str | Path) -> list[QATask]:
    """Tasks written by :func:`save_tasks` (JSON Lines).

    Raises:
        ConfigError: the file is missing, empty, binary or not valid JSON, or a record is not a QA task.
    """
    return build_tasks(path, read_records(path), _task_from_dict, kind="qa")


class QAEnv(CTAEnv):
    """Actions ``RETRIEVE`` (once; returns the top BM25 document) and ``ANSWER: <text>`` (ends)."""

    name = "qa"

    def __init__(self, tasks: list | None = None, *, max_turns: int = 3):
        super().__init__(tasks, max_turns=max_turns)

    def coerce_task(self, task: Any) -> QATask:
        if isinstance(task, QATask):
            return task
        if isinstance(task, dict):
            return QATask(**task)
        raise TypeError(f"a QA task must be a QATask or a dict, got {type(task).__name__}")

    def _start(self, task: QATask) -> tuple[str, dict]:
        self.bench = bench_of(task)
        self.retrieved = False
        return f"Question: {task.question}\nDiscount factor d: {task.gamma:.2f}\nChoose your action.", {}

    def _act(self, action: str) -> tuple[str, float, bool, dict]:
        text = action.strip()
        head = text.upper()
        if head.startswith("RETRIEVE"):
            if self.retrieved:
                msg = "Invalid action: you may retrieve at most once. Now ANSWER: <answer>."
                return msg, 0.0, False, {"valid": False, "error": msg, "costs": {"invalid": 1},
                                         "canonical_action": "INVALID"}
            self.retrieved = True
            passage = self.bench.retrieve(self.task.question)
            return f"Retrieved document: {passage}\nNow answer.", 0.0, False, {
                "costs": {"retrieve": 1}, "canonical_action": "RETRIEVE"}
        if head.startswith("ANSWER"):
            ans = text[len("ANSWER"):].lstrip(" :-\t")
            correct = normalize_answer(ans) == normalize_answer(self.task.answer) and bool(ans)
            reward = float(self.task.gamma**self.t) if correct else 0.0
            return f"Your answer: {ans!r} is {'correct' if correct else 'incorrect'}.", reward, True, {
                "costs": {"answer": 1}, "canonical_action": "ANSWER", "correct": correct}
        msg = f"Invalid action {text[:80]!r}. Respond with RETRIEVE or ANSWER: <answer>."
        return msg, 0.0, False, {"valid": False, "error": msg, "costs": {"invalid": 1}, "canonical_action": "INVALID"}

    def _summary(self, *, terminated: bool, truncated: bool, info: dict) -> dict[str, Any]:
        return {"correct": float(bool(info.get("correct", False))), "retrieved": float(self.retrieved),
                "invalid": self._cost_totals.get("invalid", 0)}


# ---------------------------------------------------------------------------------------------- policies

class _RulePolicy(Policy):
    """Decides RETRIEVE or ANSWER, then answers with the benchmark's answerer."""

    decision = "ANSWER"

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        self._task = task_view["_task"]
        self._bench = bench_of(self._task)
        self._q = self._bench.questions[self._task.task_id]

    def decide(self) -> str:
        return self.decision

    def act(self, observation: str, info: dict) -> str:
        if info.get("t", 0) == 0 and self.decide() == "RETRIEVE":
            return "RETRIEVE"
        if observation.startswith("Retrieved document: "):
            passage = observation[len("Retrieved document: "):].rsplit("\nNow answer.", 1)[0]
            return "ANSWER: " + self._bench.answerer.read(self._q, passage)
        return "ANSWER: " + self._bench.answerer.direct(self._q)


class NeverRetrieve(_RulePolicy):
    decision = "ANSWER"


class AlwaysRetrieve(_RulePolicy):
    decision = "RETRIEVE"


class ThresholdPolicy(_RulePolicy):
    """The CTA rule with the prior it is given: retrieve iff p_ret·γ >= k_da."""

    def decide(self) -> str:
        k_da, p_ret = self.prior
        return optimal_decision(k_da, p_ret, self._task.gamma)


class OraclePolicy(_RulePolicy):
    """The rule with the true probabilities of this question."""

    def decide(self) -> str:
        if math.isnan(self._task.p_da):
            raise ValueError("the QA oracle needs the simulated answerer (true probabilities unknown)")
        return optimal_decision(self._task.p_da, self._task.p_ret_true, self._task.gamma)


def _view(task: QATask) -> dict[str, Any]:
    # `_task` lets the benchmark's answerer (part of the agent, standing in for the model's knowledge)
    # find its question; decision rules read only the prior they are given (the oracle reads the truth).
    return {**task.public(), "_task": task}


def _group(task: QATask) -> str:
    lo = min(int(task.gamma * 10), 6) / 10
    return f"{lo:.1f}-{lo + 0.1:.1f}"


SPEC = register_env(EnvSpec(
    name="qa", make=lambda tasks=None, **kw: QAEnv(tasks, **kw), generate=lambda n, seed: generate_tasks(n, seed),
    load=load_tasks, public_view=_view,
    oracle_actions=lambda t: None if math.isnan(t.p_da) else [optimal_decision(t.p_da, t.p_ret_true, t.gamma)],
    match_key=lambda actions: ["RETRIEVE" if "RETRIEVE" in actions else "ANSWER"],
    group=_group, default_prior="estimated",
    describe="QA with at most one BM25 retrieval over a generated knowledge base; reward γ^t·correct (paper §3.2)",
    save=save_tasks,
))
def _true_prior(t: QATask, rng: np.random.Generator) -> tuple[float, float]:
    if math.isnan(t.p_da):
        raise ValueError("the `true` prior needs the simulated answerer (true probabilities are unknown for an LLM)")
    return (t.p_da, t.p_ret_true)


register_prior("qa", "true", _true_prior)
register_prior("qa", "estimated", lambda t, rng: (t.k_da, t.p_ret))
register_prior("qa", "raw", lambda t, rng: (t.verbal, t.p_ret))
register_prior("qa", "noisy", lambda t, rng: (float(np.clip(t.k_da + rng.normal(0, 0.2), 0, 1)), t.p_ret))
register_prior("qa", "uniform", lambda t, rng: (0.5, 0.5))
register_prior("qa", "adversarial", lambda t, rng: (1.0 - t.k_da, t.p_ret))
register_policy("qa", "oracle", OraclePolicy, uses_prior=False, description="the rule with the true probabilities")
register_policy("qa", "cta-planner", ThresholdPolicy, description="retrieve iff p_ret·γ >= k_da (given prior)")
register_policy("qa", "never-retrieve", NeverRetrieve, uses_prior=False, description="always answer directly")
register_policy("qa", "always-retrieve", AlwaysRetrieve, uses_prior=False, description="always retrieve first")


class _QALLMAgent(Policy):
    """An LLM decides and answers (the paper's PROMPTED / CTA-PROMPTED on QA)."""

    def __init__(self, with_prior: bool, thinking: bool, **kw: Any):
        super().__init__()
        from parsimon.cta.agents.llm import LLMAgent, qa_prompts

        self.inner = LLMAgent(prompts=qa_prompts, with_prior=with_prior, thinking=thinking,
                              max_tokens=kw.pop("max_tokens", 512 if thinking else 24), **kw)
        self.stats = self.inner.stats

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        view = {k: v for k, v in task_view.items() if k != "_task"}
        self.inner.reset(view, prior, seed=seed)

    def act(self, observation: str, info: dict) -> str:
        return self.inner.act(observation, info)


def _llm_factory(with_prior: bool, thinking: bool):
    return lambda **kw: _QALLMAgent(with_prior, thinking, **kw)


register_llm_policies("qa", _llm_factory, prompted="PROMPTED (no k_da, p_ret)",
                      cta="CTA-PROMPTED ((k_da, p_ret) in the prompt)")
