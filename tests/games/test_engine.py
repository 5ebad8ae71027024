"""Compilation: sizes, layout invariants, cache, errors (unknown game, bad params, no perfect recall)."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest

from parsimon.errors import ConfigError
from parsimon.games.engine import CHANCE, TERMINAL, NotPerfectRecall, UnknownGame, compile_game


def test_kuhn_layout():
    cg = compile_game("kuhn_poker")
    assert (cg.num_nodes, cg.num_infosets, cg.num_players, cg.num_actions) == (58, 12, 2, 2)
    assert cg.actor[0] == CHANCE and cg.parent[0] == -1
    # BFS order: parents precede children, depth levels contiguous
    assert np.all(cg.parent[1:] < np.arange(1, cg.num_nodes))
    depth = np.zeros(cg.num_nodes, dtype=int)
    for i in range(1, cg.num_nodes):
        depth[i] = depth[cg.parent[i]] + 1
    for d in range(cg.num_levels):
        assert np.all(depth[cg.level_ptr[d]:cg.level_ptr[d + 1]] == d)
    # infosets sorted by player, 6 each; chance probabilities of the deal sum to 1 per chance node
    assert list(cg.player_ptr) == [0, 6, 12]
    assert np.all(cg.infoset_player[:6] == 0) and np.all(cg.infoset_player[6:] == 1)
    for c in np.nonzero(cg.actor == CHANCE)[0]:
        assert cg.chance_prob[cg.parent == c].sum() == pytest.approx(1.0)
    # zero-sum payoffs at terminals only
    term = cg.actor == TERMINAL
    assert np.allclose(cg.returns.sum(axis=1), 0) and np.all(cg.returns[~term] == 0)
    assert term.sum() == 30
    # sequence-form parent links: first decisions have none, "pb" infosets of player 0 follow "p"
    assert (cg.parent_seq[cg.own_depth == 0] == -1).all()
    assert (cg.own_depth[cg.own_depth > 0] == 1).all()


def test_infoset_keys_match_openspiel_and_histories():
    game = pyspiel.load_game("kuhn_poker(players=3)")
    cg = compile_game(game)
    ki = cg.key_index()

    def walk(s, node):
        if s.is_terminal():
            assert cg.actor[node] == TERMINAL
            assert np.allclose(cg.returns[node], s.returns())
            return
        kids = np.nonzero(cg.parent == node)[0]
        if s.is_chance_node():
            outs = s.chance_outcomes()
            assert [int(cg.action[k]) for k in kids] == [a for a, _ in outs]
            for k, (a, _) in zip(kids, outs, strict=False):
                walk(s.child(a), k)
            return
        p = s.current_player()
        assert cg.infoset[node] == ki[s.information_state_string(p)]
        assert cg.infoset_player[cg.infoset[node]] == p
        assert [int(cg.action[k]) for k in kids] == s.legal_actions()
        for k in kids:
            walk(s.child(int(cg.action[k])), k)

    walk(game.new_initial_state(), 0)


def test_cache_roundtrip():
    a = compile_game("leduc_poker")
    b = compile_game("leduc_poker")
    assert not a.from_cache and b.from_cache
    for f in ("parent", "action", "actor", "infoset", "chance_prob", "returns", "legal", "keys", "parent_seq"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    s = b.summary()
    assert s["infosets"] == 936 and s["memory_bytes"] == b.nbytes == a.nbytes
    assert a.compile_seconds > 0 and s["compile_seconds"] == round(b.compile_seconds, 4) and s["from_cache"]


def test_size_estimate_tracks_the_real_size_and_refuses_huge_games():
    from parsimon.games.engine import MAX_NODES, estimate_histories, load_game

    for game in ("kuhn_poker", "kuhn_poker(players=3)", "leduc_poker"):
        est, real = estimate_histories(load_game(game)), compile_game(game).num_nodes
        assert 0.75 * real < est < 1.33 * real, (game, est, real)
    assert estimate_histories(load_game("kuhn_poker(players=10)")) > 1e10
    with pytest.raises(ConfigError, match=f"max_nodes={MAX_NODES:,}"):
        compile_game("kuhn_poker(players=10)")
    with pytest.raises(ConfigError, match="max_nodes"):
        compile_game("kuhn_poker", max_nodes=0)


def test_simultaneous_game_goes_turn_based():
    cg = compile_game("goofspiel(num_cards=4,imp_info=True,points_order=descending)")
    assert cg.game_string.startswith("turn_based_simultaneous_game")
    assert cg.num_infosets == 162


def test_errors():
    with pytest.raises(UnknownGame, match="unknown OpenSpiel game 'no_such_game'"):
        compile_game("no_such_game")
    with pytest.raises(UnknownGame, match="foo"):
        compile_game("kuhn_poker(foo=3)")
    with pytest.raises(ConfigError, match="game"):
        compile_game(42)
    with pytest.raises(ConfigError, match="max_nodes"):
        compile_game("leduc_poker", cache=False, max_nodes=100)


class _ForgetfulState:
    """One player acts twice; the second information state forgets the first action."""

    def __init__(self, hist=()):
        self.hist = hist

    def is_terminal(self):
        return len(self.hist) == 2

    def is_chance_node(self):
        return False

    def current_player(self):
        return 0

    def information_state_string(self, p):
        return f"move{len(self.hist)}"

    def legal_actions(self, p=None):
        return [0, 1]

    def child(self, a):
        return _ForgetfulState(self.hist + (a,))

    def returns(self):
        return [float(self.hist[0] == self.hist[1])]


class _ForgetfulGame:
    def get_type(self):
        class T:
            dynamics = pyspiel.GameType.Dynamics.SEQUENTIAL
            provides_information_state_string = True
            chance_mode = pyspiel.GameType.ChanceMode.DETERMINISTIC
        return T()

    def new_initial_state(self):
        return _ForgetfulState()

    def num_players(self):
        return 1

    def num_distinct_actions(self):
        return 2

    def __str__(self):
        return "forgetful_test_game()"


def test_imperfect_recall_is_refused():
    with pytest.raises(NotPerfectRecall, match="perfect recall"):
        compile_game(_ForgetfulGame(), cache=False)
