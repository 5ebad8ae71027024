"""Exact best response and NashConv against OpenSpiel (Python and C++), 2-4 players, both backends."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import best_response as os_br
from open_spiel.python.algorithms import exploitability as os_expl

from parsimon.games import best_response, compile_game, exploitability, nash_conv, policy_value
from parsimon.games.backend import Tree
from parsimon.games.policy import TabularPolicy, from_openspiel, random_policy, uniform_policy


@pytest.mark.parametrize("game", ["kuhn_poker", "kuhn_poker(players=3)", "kuhn_poker(players=4)"])
@pytest.mark.parametrize("seed", [0, 1])
def test_nash_conv_random_policies_match_openspiel(game, seed):
    cg = compile_game(game)
    pol = random_policy(cg, seed)
    ref = pyspiel.nash_conv(cg.game, os_policy.python_policy_to_pyspiel_policy(pol.to_openspiel()))
    ours = nash_conv(cg, pol)
    assert abs(ours - ref) < 1e-12
    assert exploitability(cg, pol) == pytest.approx(ours / cg.num_players, abs=1e-15)


def test_known_nash_conv_values():
    # values from OpenSpiel's own exploitability tests
    assert nash_conv("kuhn_poker", uniform_policy(compile_game("kuhn_poker"))) == pytest.approx(11 / 12, abs=1e-12)
    leduc = compile_game("leduc_poker")
    assert nash_conv(leduc, uniform_policy(leduc)) == pytest.approx(4.747222222222222, abs=1e-12)
    first = np.zeros((leduc.num_infosets, leduc.num_actions))
    first[np.arange(leduc.num_infosets), leduc.legal.argmax(axis=1)] = 1.0
    assert nash_conv(leduc, first) == pytest.approx(2.0, abs=1e-12)


def test_leduc_random_policy_matches_python_nash_conv():
    cg = compile_game("leduc_poker")
    pol = random_policy(cg, 7)
    ref = os_expl.nash_conv(cg.game, pol.to_openspiel())
    assert abs(nash_conv(cg, pol) - ref) < 1e-11


@pytest.mark.parametrize("game", ["kuhn_poker(players=3)", "leduc_poker",
                                  "goofspiel(num_cards=4,imp_info=True,points_order=descending)"])
def test_best_response_value_and_policy_match_openspiel(game):
    cg = compile_game(game)
    pol = random_policy(cg, 3)
    tp = pol.to_openspiel()
    for p in range(cg.num_players):
        ref = os_br.BestResponsePolicy(cg.game, p, tp)
        ref_value = ref.value(cg.game.new_initial_state())
        rows, value = best_response(cg, pol, p)
        assert abs(value - ref_value) < 1e-11
        # the BR rows are a pure policy achieving that value when plugged in
        full = pol.array.copy()
        full[cg.infosets_of(p)] = rows
        assert policy_value(cg, full)[p] == pytest.approx(value, abs=1e-12)
        assert np.allclose(rows.sum(axis=1), 1) and set(np.unique(rows)) <= {0.0, 1.0}


def test_uniform_tie_breaking():
    # against the uniform policy in 2p Kuhn, some infosets have exactly tied actions
    cg = compile_game("kuhn_poker")
    uni = uniform_policy(cg)
    for p in range(2):
        first, v1 = best_response(cg, uni, p, ties="first")
        unif, v2 = best_response(cg, uni, p, ties="uniform")
        assert v1 == pytest.approx(v2, abs=1e-12)
        assert np.allclose(unif.sum(axis=1), 1)
        full = uni.array.copy()
        full[cg.infosets_of(p)] = unif
        assert policy_value(cg, full)[p] == pytest.approx(v1, abs=1e-12)
    # unreached infosets (zero counterfactual reach) are all ties: uniform mixes there
    pure = np.zeros((cg.num_infosets, 2))
    pure[:, 0] = 1.0  # everyone always passes: player 0 never faces a bet
    rows, _ = best_response(cg, pure, 0, ties="uniform")
    assert (rows == 0.5).any()
    with pytest.raises(ValueError, match="ties"):
        best_response(cg, uni, 0, ties="random")
    with pytest.raises(ValueError, match="player"):
        best_response(cg, uni, 5)


def test_torch_backend_same_values():
    cg = compile_game("kuhn_poker(players=3)")
    pol = random_policy(cg, 11)
    t = Tree(cg, "torch", "cpu")
    assert nash_conv(t, pol.array) == pytest.approx(nash_conv(cg, pol), abs=1e-13)


def test_policy_roundtrip_and_shape_errors():
    cg = compile_game("leduc_poker")
    pol = random_policy(cg, 5)
    back = from_openspiel(cg, pol.to_openspiel())
    np.testing.assert_allclose(back.array, pol.array, atol=0)
    assert nash_conv(cg, pol.to_openspiel()) == pytest.approx(nash_conv(cg, pol), abs=1e-14)
    with pytest.raises(ValueError, match="shape"):
        TabularPolicy(cg, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        nash_conv(cg, np.zeros((3, 3)))


def test_torch_best_response_with_ties_matches_numpy():
    cg = compile_game("leduc_poker")
    pol = uniform_policy(cg)
    t = Tree(cg, "torch", "cpu")
    for p in range(2):
        rows_np, v_np = best_response(cg, pol, p, ties="uniform")
        rows_t, v_t = best_response(t, pol.array, p, ties="uniform")
        assert v_t == pytest.approx(v_np, abs=1e-12)
        np.testing.assert_allclose(t.B.to_numpy(rows_t), rows_np, atol=1e-12)


def test_regret_pass_own_reach_paths_agree():
    # own reach through the sequence-form links == own reach from a forward pass over the histories
    cg = compile_game("kuhn_poker(players=3)")
    t = Tree(cg)
    pol = random_policy(cg, 4).array
    probs = t.edge_probs(pol)
    for p in range(3):
        a = t.player_regrets(probs, p)
        b = t.player_regrets(probs, p, pol)
        for x, y in zip(a[:3], b[:3], strict=False):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-15)
