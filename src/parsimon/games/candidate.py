"""Run a candidate written against OpenSpiel's per-information-set interface on the fast engine.

A candidate (the form the evolved programs take, spec §1.1) defines three classes with no-argument
constructors::

    class RegretAccumulator:
        def update_accumulate_regret(self, info_state_node, iteration_number, cfr_regrets) -> dict
    class PolicyFromRegretAccumulator:
        def get_updated_current_policy(self, info_state_node, iteration_number, cfr_regrets,
                                       previous_policy) -> dict
    class PolicyAccumulator:
        def update_accumulate_policy(self, info_state_node, iteration_number, info_state_policy,
                                     cfr_regrets, reach_prob, counterfactual_reach_prob) -> dict

``info_state_node`` has ``legal_actions``, ``index_in_tabular_policy``, ``cumulative_regret`` and
``cumulative_policy`` (dicts action -> float), as OpenSpiel's ``_InfoStateNode``; dicts are keyed by
legal action. The engine computes the instantaneous regrets of all of a player's infosets at once and
then calls the candidate once per infoset, in the engine's fixed infoset order (the same driver and
order as the vectorised rules, so a candidate transcribing a built-in rule reproduces it exactly):
regret update (the returned dict becomes ``cumulative_regret``), policy accumulation with the traversal
policy (``reach_prob`` = the player's own reach of the infoset, ``counterfactual_reach_prob`` = the sum
over its histories of the others' and chance's reach), then the new current policy (which sees the
updated ``cumulative_regret``). Returned policies must be finite and non-negative; they are normalised
(uniform if they sum to 0). Anything else raises :class:`CandidateError`.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.errors import ParsimonError

from .rules import UpdateRule

__all__ = ["CandidateError", "CandidateRule", "InfoStateNode", "load_candidate", "run_candidate", "SEED_CFR_PLUS"]

CLASS_NAMES = ("RegretAccumulator", "PolicyFromRegretAccumulator", "PolicyAccumulator")


class CandidateError(ParsimonError):
    """A candidate program is malformed or returned something invalid."""


@dataclass
class InfoStateNode:
    legal_actions: list
    index_in_tabular_policy: int
    cumulative_regret: dict = field(default_factory=dict)
    cumulative_policy: dict = field(default_factory=dict)


def load_candidate(candidate: Any) -> types.SimpleNamespace:
    """Source text, a module, a dict or an object holding the three classes (or instances) ->
    a namespace of three instances."""
    if isinstance(candidate, str):
        mod = types.ModuleType("parsimon_candidate")
        try:
            exec(compile(candidate, "<candidate>", "exec"), mod.__dict__)
        except Exception as exc:
            raise CandidateError(f"candidate source does not run: {type(exc).__name__}: {exc}") from exc
        candidate = mod
    get = candidate.get if isinstance(candidate, dict) else (lambda k, d=None: getattr(candidate, k, d))
    out = {}
    for name in CLASS_NAMES:
        obj = get(name)
        if obj is None:
            raise CandidateError(f"candidate lacks `{name}` (needs {', '.join(CLASS_NAMES)})")
        if isinstance(obj, type):
            try:
                obj = obj()
            except Exception as exc:
                raise CandidateError(f"`{name}()` failed: {type(exc).__name__}: {exc}") from exc
        out[name] = obj
    return types.SimpleNamespace(**out)


class CandidateRule(UpdateRule):
    """An :class:`UpdateRule` that loops over infosets calling a candidate's three per-infoset methods."""

    def __init__(self, candidate: Any, name: str = "candidate"):
        self.c = load_candidate(candidate)
        self.name = name

    def setup(self, tree):
        super().setup(tree)
        cg = tree.cg
        legal = cg.legal
        self.acts = [list(map(int, np.nonzero(legal[i])[0])) for i in range(tree.I)]
        self.nodes = [
            InfoStateNode(legal_actions=a, index_in_tabular_policy=i,
                          cumulative_regret={x: 0.0 for x in a}, cumulative_policy={x: 0.0 for x in a})
            for i, a in enumerate(self.acts)
        ]
        # flat indices (relative to each player's block of rows) of the legal entries, in loop order
        self.flat_idx = []
        for p in range(cg.num_players):
            sl = cg.infosets_of(p)
            self.flat_idx.append(np.concatenate(
                [np.asarray(self.acts[i], dtype=np.int64) + (i - sl.start) * tree.A for i in range(sl.start, sl.stop)]
            ) if sl.stop > sl.start else np.zeros(0, dtype=np.int64))
        self._player_of_start = {int(cg.player_ptr[p]): p for p in range(cg.num_players)}

    def _collect(self, rows: slice, shape, vals: list, what: str):
        arr = np.asarray(vals, dtype=np.float64)
        if not np.isfinite(arr).all():
            bad = int(np.nonzero(~np.isfinite(arr))[0][0])
            raise CandidateError(f"{what} returned a non-finite value: {arr[bad]}")
        out = np.zeros(shape)
        out.reshape(-1)[self.flat_idx[self._player_of_start[rows.start]]] = arr
        return self.B.floats(out)

    @staticmethod
    def _values(d: Any, acts: list, what: str) -> list:
        if not isinstance(d, dict):
            raise CandidateError(f"{what} must return a dict action -> float, got {type(d).__name__}")
        try:
            return [float(d.get(a, 0.0)) for a in acts]
        except (TypeError, ValueError) as exc:
            raise CandidateError(f"{what} returned a non-number: {exc}") from exc

    def _per_infoset(self, rows: slice, fn, what: str, args, apply) -> None:
        """Call the candidate's ``fn(node, *args(j, acts))`` for each infoset of ``rows`` in order, then
        ``apply(node, acts, values)`` with the dict it returned, checked (before the next infoset's call)."""
        for j, i in enumerate(range(rows.start, rows.stop)):
            node, acts = self.nodes[i], self.acts[i]
            try:
                new = fn(node, *args(j, acts))
            except Exception as exc:
                raise CandidateError(f"{what} raised {type(exc).__name__}: {exc}") from exc
            apply(node, acts, self._values(new, acts, what))

    def _accumulated(self, rows: slice, component: str, method: str, args, attr: str, shape):
        """Run the candidate's ``component.method`` per infoset; each returned dict becomes the node's ``attr``."""
        vals: list = []

        def apply(node, acts, v):
            setattr(node, attr, dict(zip(acts, v, strict=True)))
            vals.extend(v)

        self._per_infoset(rows, getattr(getattr(self.c, component), method), method, args, apply)
        return self._collect(rows, tuple(shape), vals, method)

    def accumulate_regret(self, R, r, t, rows, legal):
        r_rows = self.B.to_numpy(r).tolist()
        self._r_dicts = [{a: r_rows[j][a] for a in self.acts[i]} for j, i in enumerate(range(rows.start, rows.stop))]
        return self._accumulated(rows, "RegretAccumulator", "update_accumulate_regret",
                                 lambda j, acts: (t, dict(self._r_dicts[j])), "cumulative_regret", r.shape)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        sig = self.B.to_numpy(sigma).tolist()
        rp, cfp = self.B.to_numpy(reach).tolist(), self.B.to_numpy(cf_reach).tolist()
        return self._accumulated(
            rows, "PolicyAccumulator", "update_accumulate_policy",
            lambda j, acts: (t, {a: sig[j][a] for a in acts}, dict(self._r_dicts[j]), rp[j], cfp[j]),
            "cumulative_policy", S.shape)

    def policy_from_regret(self, R, r, sigma, t, rows, legal):
        sig = self.B.to_numpy(sigma).tolist()
        vals: list = []
        what = "get_updated_current_policy"

        def apply(node, acts, v):
            tot = sum(v)
            if not math.isfinite(tot):
                raise CandidateError(f"{what} returned a non-finite value: {v}")
            if min(v) < 0:
                raise CandidateError(f"{what} returned a negative probability: {v}")
            vals.extend([x / tot for x in v] if tot > 0 else [1.0 / len(acts)] * len(acts))

        self._per_infoset(rows, self.c.PolicyFromRegretAccumulator.get_updated_current_policy, what,
                          lambda j, acts: (t, dict(self._r_dicts[j]), {a: sig[j][a] for a in acts}), apply)
        return self._collect(rows, tuple(sigma.shape), vals, what)

    def average_policy(self, S, legal):
        # OpenSpiel's normalisation; negative accumulations are clipped before normalising
        return self.B.normalise_rows(self.B.maximum(S, 0.0) * legal, legal)


def run_candidate(candidate: Any, game: Any, iterations: int = 1000, *, eval_every: int | None = None,
                  name: str = "candidate", progress: bool = False):
    """Run a per-infoset candidate (source text / module / classes, see the module docstring) for
    ``iterations`` on ``game`` with the engine's driver; returns a :class:`~parsimon.games.SolveResult`."""
    from .solve import solve

    return solve(game, CandidateRule(candidate, name=name), iterations, eval_every=eval_every, progress=progress)


# The seed program of the evolutionary search (CFR+ in the per-infoset interface); one source file serves
# both the adapter's tests and the evolution loop.
SEED_CFR_PLUS = (Path(__file__).resolve().parent / "evolve" / "seeds" / "cfr_plus.py").read_text()
