"""Pandora's box with one prize (the paper's proof of concept) and its exact optimal planner.

K boxes (labels A, B, C by default), exactly one holds the prize, drawn from a known prior ``p``.
Each turn the agent either ``VERIFY X`` (answer YES/NO, costs one timestep) or ``GUESS X`` (ends the
episode). Reward ``γ^t · 1(guess correct)``, ``t`` = number of actions before the guess. An invalid
action (unparseable, unknown label) consumes a turn and returns an error message, as in the paper.

The optimal planner (:func:`optimal_plan`) is the paper's Algorithm 1: a Bellman recursion over the set
of unverified boxes, always considering the most likely remaining box, committing when
``V_guess >= V_verify``. :func:`closed_form_value` is the equivalent closed form (sort the priors
``p(1) >= ... >= p(K)``; ``V* = max_j Σ_{i<=j} γ^i p(i) + γ^j p(j+1)``) used as a cross-check, and
:func:`brute_force_value` enumerates every deterministic policy on small instances.

Floating-point tie order: the paper's released labels were computed in floating point, so some exact
ties ``V_guess = V_verify`` come out as ``V_guess < V_verify`` by one rounding error and the label is
VERIFY. :func:`optimal_plan` reproduces those labels by doing the same float operations in the same
order: boxes sorted by prior, descending, with a stable sort (A before B before C on equal priors);
``W`` summed over the remaining boxes in that order; ``q = p[i*] / W``;
``V_verify = γ · (q + (1 - q) · V_fail)``; commit iff ``V_guess >= V_verify``. ``exact=True`` computes
with :class:`fractions.Fraction` instead, where exact ties commit.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.cta.base import CTAEnv, Policy
from parsimon.cta.registry import (
    EnvSpec,
    register_env,
    register_llm_policies,
    register_policy,
    register_prior,
)
from parsimon.cta.taskfile import build_tasks, read_records

__all__ = [
    "GAMMAS",
    "PandoraEnv",
    "PandoraTask",
    "brute_force_value",
    "closed_form_value",
    "generate_tasks",
    "load_tasks",
    "oracle_rollout",
    "optimal_plan",
    "parse_action",
    "save_tasks",
]

GAMMAS = tuple(round(i / 10, 1) for i in range(11))  # the paper's γ grid {0, 0.1, ..., 1}


@dataclass
class PandoraTask:
    """One Pandora task: labels, prior {label: p}, discount γ, the prize box (hidden from agents)."""

    labels: list[str]
    priors: dict[str, float]
    gamma: float
    prize: str
    task_id: str = ""
    released_optimal: list[str] | None = None  # the release's `optimal_policy.optimal_strategy`, if any

    def __post_init__(self) -> None:
        if len(self.labels) < 1 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"`labels` must be distinct and non-empty, got {self.labels}")
        if set(self.priors) != set(self.labels):
            raise ValueError(f"`priors` keys {sorted(self.priors)} must equal `labels` {self.labels}")
        if any(p < 0 for p in self.priors.values()) or abs(sum(self.priors.values()) - 1) > 1e-6:
            raise ValueError(f"`priors` must be >= 0 and sum to 1, got {self.priors}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"`gamma` must be in [0, 1], got {self.gamma}")
        if self.prize not in self.labels:
            raise ValueError(f"`prize` {self.prize!r} is not one of the labels {self.labels}")
        if not self.task_id:
            self.task_id = f"pandora_{uuid.uuid4().hex[:8]}"

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "labels": list(self.labels),
                "priors": [self.priors[lab] for lab in self.labels], "gamma": self.gamma, "prize": self.prize}

    def public(self) -> dict[str, Any]:
        """What an agent may see: labels, priors and γ (not the prize)."""
        return {"task_id": self.task_id, "labels": list(self.labels), "priors": dict(self.priors),
                "gamma": self.gamma}


# ------------------------------------------------------------------------------------------------------
# The optimal planner


def _check_priors(priors: dict[str, float], gamma: float) -> None:
    if not isinstance(priors, dict) or not priors:
        raise ValueError(f"`priors` must be a non-empty {{label: probability}} dict, got {priors!r}")
    if any((not isinstance(p, (int, float, Fraction))) or p < 0 for p in priors.values()):
        raise ValueError(f"`priors` values must be non-negative numbers, got {priors}")
    if sum(priors.values()) <= 0:
        raise ValueError("`priors` must have positive total mass")
    if not 0 <= gamma <= 1:
        raise ValueError(f"`gamma` must be in [0, 1], got {gamma}")


def _sorted_items(priors: dict[str, Any]) -> list[tuple[str, Any]]:
    # Stable sort by prior, descending: equal priors keep label order (A before B before C).
    return sorted(priors.items(), key=lambda kv: kv[1], reverse=True)


def _solve(items: list[tuple[str, Any]], gamma: Any, memo: dict) -> tuple[Any, str, Any]:
    """Algorithm 1 on the remaining boxes ``items`` (sorted); returns (value, kind, label)."""
    key = tuple(lab for lab, _ in items)
    if key in memo:
        return memo[key]
    if len(items) == 1:
        res = (1 if not isinstance(gamma, float) else 1.0, "GUESS", items[0][0])
        memo[key] = res
        return res
    w = sum(p for _, p in items)
    star, p_star = max(items, key=lambda kv: kv[1])  # first maximum = stable order
    q = p_star / w
    v_guess = q
    v_fail = _solve([kv for kv in items if kv[0] != star], gamma, memo)[0]
    v_verify = gamma * (q + (1 - q) * v_fail)
    res = (v_guess, "GUESS", star) if v_guess >= v_verify else (v_verify, "VERIFY", star)
    memo[key] = res
    return res


def optimal_plan(priors: dict[str, float], gamma: float, *, exact: bool = False) -> tuple[float, str]:
    """The optimal expected reward and first action (``"VERIFY B"`` or ``"GUESS B"``) by Algorithm 1.

    Args:
        priors: {label: probability} (renormalised internally; zero entries allowed).
        gamma: discount factor in [0, 1].
        exact: compute with exact fractions (exact ties commit) instead of the paper's float order.
    """
    _check_priors(priors, gamma)
    if exact:
        pr = {k: Fraction(str(v)) if isinstance(v, float) else Fraction(v) for k, v in priors.items()}
        g: Any = Fraction(str(gamma)) if isinstance(gamma, float) else Fraction(gamma)
        value, kind, label = _solve(_sorted_items(pr), g, {})
        return float(value), f"{kind} {label}"
    value, kind, label = _solve(_sorted_items({k: float(v) for k, v in priors.items()}), float(gamma), {})
    return float(value), f"{kind} {label}"


def oracle_rollout(priors: dict[str, float], gamma: float, prize: str, *, exact: bool = False) -> list[str]:
    """The optimal policy's realised action list given the prize box, e.g. ``["VERIFY B", "GUESS B"]``.

    After a NO the posterior is the prior renormalised over the remaining boxes, so the recursion
    continues on them; the last remaining box is guessed without verification.
    """
    _check_priors(priors, gamma)
    if prize not in priors:
        raise ValueError(f"`prize` {prize!r} is not one of {sorted(priors)}")
    if exact:
        items = _sorted_items({k: Fraction(str(v)) for k, v in priors.items()})
        g: Any = Fraction(str(gamma))
    else:
        items, g = _sorted_items({k: float(v) for k, v in priors.items()}), float(gamma)
    memo: dict = {}
    actions: list[str] = []
    while True:
        _, kind, label = _solve(items, g, memo)
        if kind == "GUESS":
            actions.append(f"GUESS {label}")
            return actions
        actions.append(f"VERIFY {label}")
        if label == prize:
            actions.append(f"GUESS {label}")
            return actions
        items = [kv for kv in items if kv[0] != label]


def closed_form_value(priors: dict[str, float], gamma: float) -> tuple[float, int]:
    """``V* = max_j R(j)``, ``R(j) = Σ_{i=1..j} γ^i p(i) + γ^j p(j+1)`` over the sorted, normalised
    priors; returns ``(V*, j*)`` (j* = number of boxes verified before guessing, if none hits)."""
    _check_priors(priors, gamma)
    total = float(sum(priors.values()))
    p = sorted((float(v) / total for v in priors.values()), reverse=True)
    best, best_j = -1.0, 0
    acc = 0.0
    for j in range(len(p)):
        r = acc + gamma**j * p[j]
        if r > best + 1e-15:
            best, best_j = r, j
        acc += gamma ** (j + 1) * p[j]
    return best, best_j


def brute_force_value(priors: dict[str, float], gamma: float) -> float:
    """Best expected reward over *every* deterministic policy (any box order, any stopping point, any
    guess after a NO), by exhaustive search over histories; exponential — for small K only."""
    _check_priors(priors, gamma)
    labels = list(priors)
    if len(labels) > 6:
        raise ValueError("brute_force_value is exponential; use at most 6 boxes")
    total = float(sum(priors.values()))
    pr = {k: float(v) / total for k, v in priors.items()}

    # A deterministic policy is a decision tree: at each history (the set of boxes still possible) it
    # either guesses one of them or verifies one and continues with a sub-policy on NO (on YES it may
    # guess the verified box or, dominated but allowed, a wrong one). all_values lists the expected
    # reward (unnormalised probability mass times discount) of *every* such tree, exhaustively.
    def all_values(remaining: tuple[str, ...]) -> list[float]:
        vals = [pr[lab] for lab in remaining]  # GUESS lab now
        if len(remaining) > 1:
            for lab in remaining:
                rest = tuple(x for x in remaining if x != lab)
                for sub in all_values(rest):
                    for yes in (pr[lab], 0.0):
                        vals.append(gamma * (yes + sub))
        return vals

    return max(all_values(tuple(labels)))


# ------------------------------------------------------------------------------------------------------
# Tasks: generation and files


def _round_priors(raw: np.ndarray, ndigits: int = 2) -> np.ndarray:
    """Round to ``ndigits`` decimals, then put the rounding residue on the largest entry so they sum to 1."""
    scale = 10**ndigits
    ints = np.round(raw * scale).astype(int)
    ints[int(np.argmax(ints))] += scale - int(ints.sum())
    if ints.min() < 0:  # pathological: take the residue from the largest instead of going negative
        ints = np.maximum(ints, 0)
        ints[int(np.argmax(ints))] += scale - int(ints.sum())
    return ints / scale


def generate_tasks(n: int = 100, seed: int = 0, *, k: int = 3, alpha: float = 1.2,
                   gammas: tuple[float, ...] = GAMMAS) -> list[PandoraTask]:
    """``n`` tasks: priors ~ symmetric Dirichlet(``alpha``) rounded to two decimals (summing to 1), the
    prize drawn from the *unrounded* draw, γ uniform over ``gammas``.

    ``alpha`` defaults to 1.2, the authors' generator setting (the released 100-task file's statistics
    fit α ≈ 1.1–1.2); the paper's text says 0.5 — pass ``alpha=0.5`` for that.
    """
    if n < 1:
        raise ValueError(f"`n` must be >= 1, got {n}")
    if not 2 <= k <= 26:
        raise ValueError(f"`k` must be in [2, 26], got {k}")
    if alpha <= 0:
        raise ValueError(f"`alpha` must be > 0, got {alpha}")
    if not gammas or any(not 0 <= g <= 1 for g in gammas):
        raise ValueError(f"`gammas` must be a non-empty list of values in [0, 1], got {gammas}")
    rng = np.random.default_rng(seed)
    labels = [chr(ord("A") + i) for i in range(k)]
    tasks = []
    for i in range(n):
        raw = rng.dirichlet(np.full(k, float(alpha)))
        prize = labels[int(rng.choice(k, p=raw))]
        gamma = float(gammas[int(rng.integers(len(gammas)))])
        pri = _round_priors(raw)
        priors = {lab: float(round(p, 2)) for lab, p in zip(labels, pri, strict=True)}
        tasks.append(PandoraTask(labels, priors, gamma, prize, task_id=f"pandora_{seed}_{i:04d}"))
    return tasks


def _task_from_dict(d: dict[str, Any], idx: int) -> PandoraTask:
    if "env" in d:  # the paper's released format
        env = d["env"]
        labels = list(env["labels"])
        pri = env["priors"]
        priors = {lab: float(pri[lab]) for lab in labels}
        opt = (d.get("optimal_policy") or {}).get("optimal_strategy")
        return PandoraTask(labels, priors, float(d["discount_factor"]), env["true_arm"],
                           task_id=str(d.get("task_id") or f"task_{idx}"),
                           released_optimal=list(opt) if opt else None)
    labels = list(d["labels"])
    raw = d["priors"]
    priors = {lab: float(raw[lab]) for lab in labels} if isinstance(raw, dict) else \
        {lab: float(p) for lab, p in zip(labels, raw, strict=True)}
    return PandoraTask(labels, priors, float(d["gamma"]), d["prize"], task_id=str(d.get("task_id") or f"task_{idx}"))


def load_tasks(path: str | Path) -> list[PandoraTask]:
    """Load tasks from our JSON Lines format (one ``{"labels", "priors", "gamma", "prize"}`` per line) or
    the paper's released JSON list (``task_id``, ``env.labels``, ``env.priors``, ``env.true_arm``,
    ``discount_factor``, ``optimal_policy.optimal_strategy``).

    Raises:
        ConfigError: the file is missing, empty, binary or not valid JSON, or a record is not a Pandora task
            (the message names the file and the line or item).
    """
    return build_tasks(path, read_records(path), _task_from_dict, kind="pandora")


def save_tasks(tasks: list[PandoraTask], path: str | Path) -> Path:
    """Write tasks in our JSON Lines format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t.to_json()) + "\n" for t in tasks))
    return path


# ------------------------------------------------------------------------------------------------------
# The environment

_ACTION_RE = re.compile(r"\b(VERIFY|GUESS)\s*[:\-]?\s*(?:box\s+|bag\s+)?([A-Za-z])\b", re.IGNORECASE)


def parse_action(text: str, labels: list[str]) -> tuple[str, str] | None:
    """Parse ``VERIFY X`` / ``GUESS X`` (case-insensitive) from an agent's text; the *last* match after an
    ``Action:`` marker or a ``</think>`` if present, else the last match anywhere. None if none is valid."""
    if not isinstance(text, str):
        return None
    for marker in ("</think>", "Action:", "ACTION:", "action:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    upper = {lab.upper(): lab for lab in labels}
    found = None
    for m in _ACTION_RE.finditer(text):
        lab = upper.get(m.group(2).upper())
        if lab is not None:
            found = (m.group(1).upper(), lab)
    return found


class PandoraEnv(CTAEnv):
    """The Pandora environment (text actions ``VERIFY X`` / ``GUESS X``); default ``max_turns = 3``
    (K for K boxes), as the paper's conversation manager."""

    name = "pandora"

    def __init__(self, tasks: list | None = None, *, max_turns: int | None = None):
        super().__init__(tasks, max_turns=max_turns or 3)
        self._fixed_turns = max_turns

    def coerce_task(self, task: Any) -> PandoraTask:
        if isinstance(task, PandoraTask):
            return task
        if isinstance(task, dict):
            return _task_from_dict(task, 0)
        raise TypeError(f"a Pandora task must be a PandoraTask or a dict, got {type(task).__name__}")

    def _prompt(self) -> str:
        return f"TIMESTEP: t={self.t}"

    def _start(self, task: PandoraTask) -> tuple[str, dict]:
        if self._fixed_turns is None:
            self.max_turns = max(3, len(task.labels))
        self.verified: set[str] = set()
        obs = (f"--- NEW GAME ---\nTIMESTEP: t=0\nBag labels: {', '.join(task.labels)}\n"
               f"Discount factor r: {task.gamma}\nChoose your action.")
        return obs, {"labels": list(task.labels), "gamma": task.gamma}

    def _act(self, action: str) -> tuple[str, float, bool, dict]:
        task = self.task
        parsed = parse_action(action, task.labels)
        if parsed is None:
            msg = (f"Invalid action {action.strip()[:80]!r}. Respond with exactly one action: VERIFY <label> or "
                   f"GUESS <label>, label one of {', '.join(task.labels)}.")
            return f"{msg}\nTIMESTEP: t={self.t + 1}", 0.0, False, {
                "valid": False, "error": msg, "costs": {"invalid": 1}, "canonical_action": "INVALID"}
        kind, label = parsed
        canonical = f"{kind} {label}"
        if kind == "VERIFY":
            self.verified.add(label)
            hit = label == task.prize
            obs = (f"The verification result is: {'YES' if hit else 'NO'}, {label} is "
                   f"{'correct' if hit else 'incorrect'}.\nTIMESTEP: t={self.t + 1}")
            return obs, 0.0, False, {"costs": {"verify": 1}, "canonical_action": canonical, "verified": hit}
        correct = label == task.prize
        reward = float(task.gamma**self.t) if correct else 0.0
        obs = f"You guessed {label}: {'correct' if correct else 'incorrect'}. Reward: {reward:.4f}."
        self._correct = correct
        return obs, reward, True, {"costs": {"guess": 1}, "canonical_action": canonical, "correct": correct}

    def _summary(self, *, terminated: bool, truncated: bool, info: dict) -> dict[str, Any]:
        return {"correct": bool(terminated and info.get("correct", False)),
                "verifies": self._cost_totals.get("verify", 0), "invalid": self._cost_totals.get("invalid", 0),
                "guess_now": float(self.t == 1 and terminated)}


# ------------------------------------------------------------------------------------------------------
# Programmatic policies


class PlannerPolicy(Policy):
    """Algorithm 1 on the prior it is given, re-planned after every NO (the CTA planner; with the true
    prior it is the oracle)."""

    def __init__(self, *, exact: bool = False):
        super().__init__()
        self.exact = exact

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, prior, seed=seed)
        labels = task_view["labels"]
        self.belief = dict(prior) if prior is not None else {lab: 1.0 / len(labels) for lab in labels}
        self.gamma = task_view["gamma"]
        self.pending: str | None = None

    def act(self, observation: str, info: dict) -> str:
        if self.pending is not None and "YES" in observation:
            return f"GUESS {self.pending}"
        if self.pending is not None:
            self.belief.pop(self.pending, None)
            if sum(self.belief.values()) <= 0:  # a zero-prior world: spread evenly over the rest
                self.belief = {k: 1.0 for k in self.belief}
        _, action = optimal_plan(self.belief, self.gamma, exact=self.exact)
        kind, label = action.split()
        self.pending = label if kind == "VERIFY" else None
        return action


class GuessNowPolicy(Policy):
    """Guess the most likely box at t = 0 (the uniform prior's argmax = the first label)."""

    def act(self, observation: str, info: dict) -> str:
        pri = self.prior or {lab: 1.0 for lab in self.task_view["labels"]}
        best = max(_sorted_items(pri), key=lambda kv: kv[1])[0]
        return f"GUESS {best}"


class FixedPolicy(Policy):
    """Always the same first action (e.g. ``GUESS A``), then guess after a YES."""

    def __init__(self, *, label: str = "A"):
        super().__init__()
        self.label = label

    def act(self, observation: str, info: dict) -> str:
        return f"GUESS {self.label}"


# ------------------------------------------------------------------------------------------------------
# Prior sources (Pandora gives priors exactly; the others perturb them)


def _normalise(d: dict[str, float]) -> dict[str, float]:
    s = sum(d.values())
    return {k: round(v / s, 2) for k, v in d.items()}


def _prior_true(task: PandoraTask, rng: np.random.Generator) -> dict[str, float]:
    return dict(task.priors)


def _prior_uniform(task: PandoraTask, rng: np.random.Generator) -> dict[str, float]:
    return {lab: 1.0 / len(task.labels) for lab in task.labels}


def _prior_noisy(task: PandoraTask, rng: np.random.Generator) -> dict[str, float]:
    # 40 % of tasks get their prior values shuffled among the boxes (as the paper's "noisy" prior).
    if rng.random() < 0.4:
        vals = rng.permutation([task.priors[lab] for lab in task.labels])
        return {lab: float(v) for lab, v in zip(task.labels, vals, strict=True)}
    return dict(task.priors)


def _prior_adversarial(task: PandoraTask, rng: np.random.Generator) -> dict[str, float]:
    # 0.95 on the least likely box (by the true prior), the rest spread evenly.
    worst = min(_sorted_items(task.priors)[::-1], key=lambda kv: kv[1])[0]
    k = len(task.labels)
    return {lab: (0.95 if lab == worst else 0.05 / (k - 1)) for lab in task.labels}


def _oracle_actions(task: PandoraTask) -> list[str]:
    return oracle_rollout(task.priors, task.gamma, task.prize)


def _make_env(tasks: list | None = None, **kw: Any) -> PandoraEnv:
    return PandoraEnv(tasks, **kw)


SPEC = register_env(EnvSpec(
    name="pandora", make=_make_env, generate=lambda n, seed: generate_tasks(n, seed), load=load_tasks,
    public_view=lambda t: t.public(), oracle_actions=_oracle_actions, default_prior="true",
    describe="Pandora's box: K boxes, one prize, VERIFY X / GUESS X, reward γ^t·correct (paper §3.1)",
    save=save_tasks,
))
for _name, _fn in (("true", _prior_true), ("estimated", _prior_true), ("released", _prior_true),
                   ("noisy", _prior_noisy), ("uniform", _prior_uniform), ("adversarial", _prior_adversarial)):
    register_prior("pandora", _name, _fn)


class _OraclePolicy(PlannerPolicy):
    """The planner with the true prior whatever prior source is chosen (the paper's Oracle)."""

    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, task_view["priors"], seed=seed)


class _UniformPlanner(PlannerPolicy):
    def reset(self, task_view: Any, prior: Any, *, seed: int | None = None) -> None:
        super().reset(task_view, None, seed=seed)


register_policy("pandora", "oracle", _OraclePolicy, description="Algorithm 1 with the true prior")
register_policy("pandora", "cta-planner", PlannerPolicy, description="Algorithm 1 with the given prior source")
register_policy("pandora", "uniform-prior", _UniformPlanner, uses_prior=False,
                description="Algorithm 1 with a uniform prior (acts optimally without priors)")
register_policy("pandora", "guess-now", GuessNowPolicy, description="GUESS the argmax-prior box at t=0")
register_policy("pandora", "guess-first", FixedPolicy, uses_prior=False, description="always GUESS A at t=0")


def _llm_factory(with_prior: bool, thinking: bool):
    def make(**kw: Any) -> Policy:
        from parsimon.cta.agents.llm import LLMAgent, pandora_prompts

        return LLMAgent(prompts=pandora_prompts, with_prior=with_prior, thinking=thinking, **kw)

    return make


register_llm_policies("pandora", _llm_factory, prompted="PROMPTED (no prior)", cta="CTA-PROMPTED (prior in prompt)")
