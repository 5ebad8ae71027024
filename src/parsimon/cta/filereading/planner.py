"""The Bayes-optimal FILEREADING planner: dynamic programming over the format configurations.

Model (the environment's, spec A3.3): the file's format ``z*`` is one of the configurations (12 for
delimiter × quotechar × skiprows), distributed as the prior. Each turn the agent takes one action:

* ``UNIT_TESTS`` on a non-empty set ``A`` of attributes: reveals ``z*``'s value for each (reliable), costs
  ``d_u^|A|`` (multiplicative);
* ``CODE`` with configuration ``z``: succeeds (prints the answer) iff ``z = z*``, otherwise fails; costs
  ``d_c`` either way;
* ``ANSWER``: ends the episode; correct only after a successful CODE (reward 1 · discounts), else 0.

The state is the set ``S`` of configurations still consistent with what was observed (tests keep those
with the observed values, a failed CODE removes one) and the number of turns left ``T``; the belief is the
prior restricted to ``S``. With ``P`` the normalised belief::

    V(S, T) = max(0,
                  max_z∈S   d_c · (P(z) + (1 − P(z)) · V(S∖{z}, T−1))          if T ≥ 2
                  max_A     d_u^|A| · Σ_o P(o) · V(S_o, T−1))                   (A: untested attributes)

(after a successful CODE the ANSWER takes one more turn, hence ``T ≥ 2``). The tables are computed for every
subset at once (vectorised). :func:`brute_force_value` enumerates every deterministic policy (decision tree) on
small instances and evaluates each forward against every true configuration, as an independent check.

Ties are broken deterministically: CODE before UNIT_TESTS, likelier configurations first, smaller test
sets first.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from parsimon.cta.filereading.prior import ATTRS, CONFIGS, OPTIONS, joint, true_prior

__all__ = ["Action", "FormatPlanner", "brute_force_value", "oracle_actions", "policy_value"]

_TOL = 1e-12


@dataclass(frozen=True)
class Action:
    """``kind`` is "test" (``attrs``: attribute indices), "code" (``config``: index) or "answer"."""

    kind: str
    attrs: tuple[int, ...] = ()
    config: int = -1


class _Structure:
    """Prior-independent tables over all subsets (bit masks) of the configurations, shared by planners."""

    def __init__(self, configs: tuple[tuple, ...], test_sets: list[tuple[int, ...]]):
        n = len(configs)
        self.n, self.size = n, 1 << n
        masks = np.arange(self.size, dtype=np.int64)
        self.masks = masks
        self.bits = ((masks[:, None] >> np.arange(n)) & 1).astype(float)  # (2^n, n)
        n_attr = len(configs[0])
        value_masks = []  # per attribute: {value: mask of configs with it}
        for a in range(n_attr):
            vm: dict[Any, int] = {}
            for i, c in enumerate(configs):
                vm[c[a]] = vm.get(c[a], 0) | (1 << i)
            value_masks.append(vm)
        self.n_values = []  # per attribute: number of distinct values present in each mask
        for a in range(n_attr):
            self.n_values.append(sum(((masks & m) != 0).astype(int) for m in value_masks[a].values()))
        self.tests = []  # per test set: (valid mask array, [group masks])
        for ts in test_sets:
            valid = np.ones(self.size, dtype=bool)
            for a in ts:
                valid &= self.n_values[a] >= 2
            groups: dict[tuple, int] = {}
            for i, c in enumerate(configs):
                k = tuple(c[a] for a in ts)
                groups[k] = groups.get(k, 0) | (1 << i)
            self.tests.append((valid, list(groups.values())))


_STRUCT: dict[tuple, _Structure] = {}


class FormatPlanner:
    """Bayes-optimal planner for one task (exact dynamic programming over configuration subsets).

    Args:
        prior: a factorised prior ``{attr: {option: p}}`` (FILEREADING's three attributes), or a joint
            probability vector over ``configs``.
        d_unit, d_code: the per-test and per-CODE discounts, in (0, 1].
        max_turns: the episode's turn limit (8 in the paper), ANSWER included.
        configs / attrs: the configuration tuples and attribute names (defaults: the 12 FILEREADING
            formats); used to plan on smaller instances (at most 16 configurations).
        batch_tests: allow several tests in one action (the paper's environment does; with enough turns
            it never helps, since testing one at a time is at least as good).

    The value tables ``V_T[mask]`` for every subset and every number of turns left are computed at once,
    vectorised over the subsets (a few milliseconds for 12 configurations and 8 turns).
    """

    def __init__(self, prior: dict | Sequence[float], d_unit: float, d_code: float, *, max_turns: int = 8,
                 configs: Sequence[tuple] = CONFIGS, attrs: Sequence[str] = ATTRS, batch_tests: bool = True):
        for name, v in (("d_unit", d_unit), ("d_code", d_code)):
            if not 0 < float(v) <= 1:
                raise ValueError(f"`{name}` must be in (0, 1], got {v}")
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"`max_turns` must be a positive int, got {max_turns!r}")
        self.configs = [tuple(c) for c in configs]
        if not 1 <= len(self.configs) <= 16:
            raise ValueError(f"`configs` must hold 1 to 16 configurations, got {len(self.configs)}")
        self.attrs = tuple(attrs)
        if isinstance(prior, dict):
            if self.configs != list(CONFIGS):
                raise ValueError("a factorised prior dict needs the default FILEREADING configs; pass a joint vector")
            p = joint(prior)
        else:
            p = np.asarray(prior, dtype=float)
            if p.shape != (len(self.configs),) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
                raise ValueError(f"`prior` must be {len(self.configs)} non-negative numbers with a positive sum")
        p = p / p.sum()
        # A floor keeps beliefs defined when the prior rules the true format out.
        p = np.maximum(p, 1e-12)
        self.p = p / p.sum()
        self.d_unit, self.d_code, self.max_turns = float(d_unit), float(d_code), max_turns
        self.batch_tests = batch_tests
        n_attr = len(self.configs[0])
        sizes = range(1, n_attr + 1) if batch_tests else [1]
        self._test_sets = [c for k in sizes for c in itertools.combinations(range(n_attr), k)]
        key = (tuple(self.configs), batch_tests)
        if key not in _STRUCT:
            _STRUCT[key] = _Structure(tuple(self.configs), self._test_sets)
        self._st = _STRUCT[key]
        self.mass = self._st.bits @ self.p
        self._order = sorted(range(len(self.configs)), key=lambda j: (-self.p[j], j))
        self._V = self._tables()

    @property
    def full(self) -> int:
        return (1 << len(self.configs)) - 1

    def _tables(self) -> list[np.ndarray]:
        st = self._st
        masks, mass = st.masks, self.mass
        nonempty = mass > 0
        safe = np.where(nonempty, mass, 1.0)
        V = [np.zeros(st.size), np.zeros(st.size)]  # T = 0, 1: no CODE + ANSWER possible
        for _ in range(2, self.max_turns + 1):
            prev = V[-1]
            best = np.zeros(st.size)
            for i in range(st.n):
                has = (masks >> i) & 1 == 1
                q = self.p[i] / safe
                rest = masks & ~(1 << i)
                v = self.d_code * (q + (1 - q) * prev[rest])
                best = np.maximum(best, np.where(has, v, 0.0))
            for (valid, groups), ts in zip(st.tests, self._test_sets, strict=True):
                ev = np.zeros(st.size)
                for g in groups:
                    sub = masks & g
                    ev += mass[sub] * prev[sub]
                v = self.d_unit ** len(ts) * ev / safe
                best = np.maximum(best, np.where(valid & nonempty, v, 0.0))
            V.append(best)
        return V

    def candidates(self, mask: int, turns: int) -> list[tuple[float, Action]]:
        """Every useful action in state ``(mask, turns)`` with its value, in tie-break order."""
        out: list[tuple[float, Action]] = []
        if turns < 2 or mask == 0:
            return out
        prev = self._V[turns - 1]
        total = self.mass[mask]
        for i in self._order:
            if mask >> i & 1:
                q = self.p[i] / total
                out.append((self.d_code * (q + (1 - q) * prev[mask & ~(1 << i)]), Action("code", config=i)))
        for (valid, groups), ts in zip(self._st.tests, self._test_sets, strict=True):
            if valid[mask]:
                ev = sum(self.mass[mask & g] * prev[mask & g] for g in groups) / total
                out.append((self.d_unit ** len(ts) * ev, Action("test", attrs=ts)))
        return out

    def solve(self, mask: int | None = None, turns: int | None = None) -> tuple[float, Action]:
        """``(value, best action)`` in state ``(mask, turns left)`` (default: the start)."""
        mask = self.full if mask is None else int(mask)
        turns = self.max_turns if turns is None else int(turns)
        if not 0 <= turns <= self.max_turns:
            raise ValueError(f"`turns` must be in [0, {self.max_turns}], got {turns}")
        best_v, best_a = 0.0, Action("answer")
        for v, a in self.candidates(mask, turns):
            if v > best_v + _TOL:
                best_v, best_a = v, a
        return float(self._V[turns][mask]), best_a

    def value(self) -> float:
        """Expected reward of the optimal policy under the prior."""
        return float(self._V[self.max_turns][self.full])

    def observe_test(self, mask: int, attrs: Sequence[int], values: Sequence[Any]) -> int:
        """The state after a test of ``attrs`` showed ``values``."""
        keep = 0
        for i in range(len(self.configs)):
            if mask >> i & 1 and all(self.configs[i][a] == v for a, v in zip(attrs, values, strict=True)):
                keep |= 1 << i
        return keep

    def rollout(self, true_config: tuple) -> tuple[list[Action], float]:
        """The optimal policy's actions and reward when the file's format is ``true_config``."""
        true_config = tuple(true_config)
        if true_config not in self.configs:
            raise ValueError(f"`true_config` must be one of {self.configs}, got {true_config}")
        mask, turns, actions, reward = self.full, self.max_turns, [], 1.0
        while True:
            _, a = self.solve(mask, turns)
            actions.append(a)
            if a.kind == "answer":
                return actions, 0.0
            turns -= 1
            if a.kind == "code":
                reward *= self.d_code
                if self.configs[a.config] == true_config:
                    actions.append(Action("answer"))
                    return actions, reward
                mask &= ~(1 << a.config)
            else:
                reward *= self.d_unit ** len(a.attrs)
                mask = self.observe_test(mask, a.attrs, [true_config[i] for i in a.attrs])


def policy_value(planner: FormatPlanner) -> float:
    """Forward evaluation: Σ_z P(z) · reward of the planner's rollout when the format is z."""
    return float(sum(planner.p[i] * planner.rollout(c)[1] for i, c in enumerate(planner.configs)))


def brute_force_value(prior: Sequence[float], d_unit: float, d_code: float, *, max_turns: int,
                      configs: Sequence[tuple], batch_tests: bool = True) -> float:
    """Best expected reward over **every** deterministic policy, by explicit enumeration (small instances).

    Each policy is represented by its reward vector over the true configurations (no maximisation inside
    the enumeration); the best policy is the argmax of ``prior · vector`` over all of them.
    """
    configs = [tuple(c) for c in configs]
    n, n_attr = len(configs), len(configs[0])
    p = np.asarray(prior, dtype=float)
    p = p / p.sum()
    sizes = range(1, n_attr + 1) if batch_tests else [1]
    test_sets = [c for k in sizes for c in itertools.combinations(range(n_attr), k)]

    def trees(members: tuple[int, ...], turns: int) -> np.ndarray:
        # All reward vectors (rows) of policies started in this state; zero outside `members`.
        vecs = [np.zeros(n)]  # ANSWER now (or give up)
        if turns >= 2 and members:
            for z in members:
                rest = tuple(i for i in members if i != z)
                for sub in trees(rest, turns - 1):
                    v = d_code * sub
                    v[z] = d_code  # success, then ANSWER
                    vecs.append(v)
            for attrs in test_sets:
                groups: dict[tuple, list[int]] = {}
                for i in members:
                    groups.setdefault(tuple(configs[i][a] for a in attrs), []).append(i)
                if any(len({configs[i][a] for i in members}) == 1 for a in attrs):
                    continue
                branch = [trees(tuple(g), turns - 1) for g in groups.values()]
                for combo in itertools.product(*[range(len(b)) for b in branch]):
                    v = sum(b[k] for b, k in zip(branch, combo, strict=True)) * d_unit ** len(attrs)
                    vecs.append(v)
        arr = np.unique(np.round(np.array(vecs), 15), axis=0)
        return arr

    all_vecs = trees(tuple(range(n)), max_turns)
    return float((all_vecs @ p).max())


def config_options(attrs: Sequence[str] = ATTRS) -> list[tuple]:
    """The configurations of the given FILEREADING attributes (helper for small instances)."""
    return list(itertools.product(*[OPTIONS[a] for a in attrs]))


@functools.lru_cache(maxsize=4096)
def _oracle_actions(features: tuple, d_unit: float, d_code: float, fmt: tuple) -> tuple[str, ...]:
    acts, _ = FormatPlanner(true_prior(dict(features)), d_unit, d_code).rollout(fmt)
    out = []
    for a in acts:
        if a.kind == "code":
            out.append("CODE")
        elif a.kind == "test":
            out.append("UNIT_TESTS: " + ",".join(ATTRS[i] for i in a.attrs))
        else:
            out.append("ANSWER")
    return tuple(out)


def oracle_actions(task: Any) -> list[str]:
    """The canonical actions of the optimal policy under the true prior on ``task`` (for the match rate)."""
    return list(_oracle_actions(tuple(sorted(task.features.items())), task.d_unit, task.d_code, tuple(task.fmt)))
