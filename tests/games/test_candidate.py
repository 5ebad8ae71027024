"""The per-infoset candidate adapter: the CFR+ seed reproduces the engine; bad candidates fail clearly."""

from __future__ import annotations

import types

import numpy as np
import pytest

from parsimon.games import run_candidate, solve
from parsimon.games.candidate import SEED_CFR_PLUS, CandidateError, load_candidate


@pytest.mark.parametrize("game", ["kuhn_poker(players=3)", "goofspiel(num_cards=4,imp_info=True,points_order=descending)"])
def test_seed_cfr_plus_equals_engine(game):
    a = solve(game, "cfr+", 60, eval_every=20)
    b = run_candidate(SEED_CFR_PLUS, game, 60, eval_every=20)
    np.testing.assert_allclose(b.average_policy.array, a.average_policy.array, rtol=0, atol=1e-12)
    for (i, x), (j, y) in zip(a.exploitability, b.exploitability, strict=False):
        assert i == j and abs(x - y) < 1e-12


def test_module_and_dict_forms():
    mod = types.ModuleType("cand")
    exec(SEED_CFR_PLUS, mod.__dict__)
    r1 = run_candidate(mod, "kuhn_poker", 10, eval_every=10)
    r2 = run_candidate({k: getattr(mod, k) for k in ("RegretAccumulator", "PolicyFromRegretAccumulator",
                                                     "PolicyAccumulator")}, "kuhn_poker", 10, eval_every=10)
    assert r1.exploitability == r2.exploitability


def _broken(old: str, new: str) -> str:
    assert old in SEED_CFR_PLUS
    return SEED_CFR_PLUS.replace(old, new)


@pytest.mark.parametrize("source,match", [
    ("x = (", "does not run"),
    ("class RegretAccumulator: pass", "lacks `PolicyFromRegretAccumulator`"),
    (_broken("w = (iteration_number + 1) * reach_prob", "w = 1 / 0"), "ZeroDivisionError"),
    (_broken("return {a: pos[a] / total for a in acts}", "return {a: -1.0 for a in acts}"), "negative"),
    (_broken("return {a: pos[a] / total for a in acts}", "return {a: float('nan') for a in acts}"), "non-finite"),
    (_broken("return {a: pos[a] / total for a in acts}", "return {a: float('inf') for a in acts}"), "non-finite"),
    (_broken("w * info_state_policy[a]", "float('inf')"), "non-finite"),
    (_broken("max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])", "float('nan')"),
     "non-finite"),
    (_broken("return {\n            a: max(0.0", "return [\n            max(0.0").replace(
        "for a in info_state_node.legal_actions\n        }\n\n\nclass PolicyFromRegretAccumulator",
        "for a in info_state_node.legal_actions\n        ]\n\n\nclass PolicyFromRegretAccumulator"), "dict"),
])
def test_bad_candidates_raise(source, match):
    with pytest.raises(CandidateError, match=match):
        run_candidate(source, "kuhn_poker", 3)


def test_load_candidate_instantiates_classes():
    ns = load_candidate(SEED_CFR_PLUS)
    assert hasattr(ns.RegretAccumulator, "update_accumulate_regret")
