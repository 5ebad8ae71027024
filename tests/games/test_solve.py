"""Public API: solve() / SolveResult, evaluation schedule, OpenSpiel conversion, argument errors."""

from __future__ import annotations

import pytest
from open_spiel.python.algorithms import exploitability as os_expl

import parsimon.games as G
from parsimon.games.solve import eval_schedule


def test_solve_result_fields_and_openspiel_policy():
    res = G.solve("leduc_poker", "cfr+", 30, eval_every=10)
    assert [i for i, _ in res.exploitability] == [10, 20, 30]
    assert res.exploitability[0][1] > res.exploitability[-1][1] > 0
    assert res.seconds_per_iteration > 0 and res.algo == "cfr+" and res.iterations == 30
    tp = res.average_policy.to_openspiel()
    game = res.average_policy.game.game
    assert os_expl.exploitability(game, tp) == pytest.approx(res.exploitability[-1][1], abs=1e-12)
    j = res.to_json()
    assert j["exploitability"][-1] == [30, res.exploitability[-1][1]]


def test_solve_accepts_game_objects_and_compiled_games():
    import pyspiel

    a = G.solve(pyspiel.load_game("kuhn_poker"), "cfr", 5, eval_every=5)
    b = G.solve(G.compile_game("kuhn_poker"), "cfr", 5, eval_every=5)
    assert a.exploitability == b.exploitability


def test_a_compiled_tree_is_accepted_as_game_everywhere():
    """Issue 16: the engine docs say a compiled Tree is accepted as `game`; solve() refused it."""
    from parsimon.games.backend import Tree
    from parsimon.games.candidate import SEED_CFR_PLUS
    from parsimon.games.cfr import CFRDriver

    cg = G.compile_game("kuhn_poker")
    tree = Tree(cg)
    ref = G.solve(cg, "cfr+", 20, eval_every=10)
    assert G.solve(tree, "cfr+", 20, eval_every=10).exploitability == ref.exploitability
    assert G.compile_game(tree) is cg
    assert CFRDriver(tree, "cfr").tree is tree
    assert G.exploitability(tree, ref.average_policy) == ref.final_exploitability
    assert G.nash_conv(tree, ref.average_policy) == pytest.approx(2 * ref.final_exploitability, abs=1e-15)
    cand = G.run_candidate(SEED_CFR_PLUS, tree, 20, eval_every=10).exploitability
    assert [e for _, e in cand] == pytest.approx([e for _, e in ref.exploitability], rel=1e-12)
    assert G.psro(tree, "nash", "nash", 3).exploitability == G.psro(cg, "nash", "nash", 3).exploitability
    on_torch = G.solve(tree, "cfr+", 20, eval_every=10, backend="torch", device="cpu")
    assert on_torch.backend == "torch:cpu"
    assert [e for _, e in on_torch.exploitability] == pytest.approx([e for _, e in ref.exploitability], abs=1e-12)


def test_result_objects_share_a_shape():
    from parsimon.run import Result

    res = G.solve("kuhn_poker", "cfr", 10, eval_every=5)
    assert isinstance(res, Result) and res.final == res.final_exploitability == res.exploitability[-1][1]
    d = res.to_dict()
    assert d["final_exploitability"] == res.final and d["exploitability"][-1] == [10, res.final]
    p = G.psro("kuhn_poker", "uniform", "uniform", 2)
    assert isinstance(p, Result) and p.final == p.exploitability[-1][1] == p.to_dict()["final_exploitability"]


def test_eval_schedule():
    assert eval_schedule(10, 3) == [3, 6, 9, 10]
    assert eval_schedule(1000, None)[:2] == [10, 20] and eval_schedule(1000, None)[-1] == 1000
    assert eval_schedule(5, 1) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="eval_every"):
        eval_schedule(10, 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`algo` must be one of \[.*'cfr\+'.*\], got 'cfrx'"):
        G.solve("kuhn_poker", "cfrx", 10)
    with pytest.raises(ValueError, match="iterations"):
        G.solve("kuhn_poker", "cfr", 0)
    with pytest.raises(ValueError, match="unknown OpenSpiel game"):
        G.solve("kuhn_pokr", "cfr", 10)
    with pytest.raises(ValueError, match="backend"):
        G.solve("kuhn_poker", "cfr", 10, backend="jax")


def test_algorithm_aliases():
    assert G.make_rule("CFR_PLUS").name == "cfr+"
    assert G.make_rule("dpcfr+").name == "pdcfr+"
    assert set(G.ALGORITHMS) == {"cfr", "cfr+", "lcfr", "dcfr", "pcfr+", "pdcfr+", "vad-cfr", "aod-cfr"}


def test_progress_and_callback():
    seen = []
    G.solve("kuhn_poker", "cfr+", 20, eval_every=10, progress=True, callback=lambda k, e: seen.append(k))
    assert seen == [10, 20]
