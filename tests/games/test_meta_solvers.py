"""Meta-solvers against known equilibria, OpenSpiel's PRD / RM / AlphaRank and a direct transcription of
SHOR-PSRO's hybrid solver (spec §2.2)."""

from __future__ import annotations

import numpy as np
import pytest

from parsimon.errors import ConfigError
from parsimon.games import meta_solvers as ms

RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])


def _random_game(shape, seed, zero_sum=False):
    rng = np.random.default_rng(seed)
    mg = [rng.normal(size=shape) for _ in range(len(shape))]
    if zero_sum:
        mg[-1] = -sum(mg[:-1])
    return mg


def test_uniform_and_input_checks():
    out = ms.uniform([np.zeros((2, 3)), np.zeros((2, 3))])
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    np.testing.assert_allclose(out[1], [1 / 3] * 3)
    with pytest.raises(ConfigError, match="meta_games"):
        ms.uniform([])
    with pytest.raises(ConfigError, match="axes"):
        ms.uniform([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(ConfigError, match=r"`meta-solver` must be one of \['alpharank', 'nash', .*got 'bogus'"):
        ms.get_solver("bogus")
    assert ms.get_solver("SHOR_EVAL").name == "shor-eval" and ms.get_solver("prd", iterations=5).kwargs == {
        "iterations": 5}


@pytest.mark.parametrize("game,expected", [
    (RPS, ([1 / 3] * 3, [1 / 3] * 3)),
    (PENNIES, ([0.5, 0.5], [0.5, 0.5])),
    # row: 2p - (1 - p) = -p + (1 - p)  ->  p = 2/5 ; column: 2q - (1 - q) = -q + (1 - q) -> q = 2/5
    (np.array([[2.0, -1.0], [-1.0, 1.0]]), ([0.4, 0.6], [0.4, 0.6])),
])
def test_nash_lp_known_equilibria(game, expected):
    x, y = ms.nash_2p_zero_sum([game, -game])
    np.testing.assert_allclose(x, expected[0], atol=1e-8)
    np.testing.assert_allclose(y, expected[1], atol=1e-8)


def test_nash_lp_value_on_random_game():
    A = np.random.default_rng(3).normal(size=(6, 4))
    x, y = ms.nash_2p_zero_sum([A, -A])
    # equilibrium: x guarantees v, y holds the row player to v
    assert (x @ A).min() == pytest.approx((A @ y).max(), abs=1e-8)


def test_nash_rejects_bad_games():
    with pytest.raises(ConfigError, match="zero-sum"):
        ms.nash_2p_zero_sum([RPS, RPS])
    with pytest.raises(ConfigError, match="2-player"):
        ms.nash_2p_zero_sum(_random_game((2, 2, 2), 0))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4)])
def test_prd_and_rm_match_openspiel(shape):
    from open_spiel.python.algorithms import projected_replicator_dynamics as os_prd
    from open_spiel.python.algorithms import regret_matching as os_rm

    mg = _random_game(shape, 7)
    a = ms.projected_replicator_dynamics(mg, iterations=1500, gamma=1e-3)
    b = os_prd.projected_replicator_dynamics(mg, prd_iterations=1500, prd_gamma=1e-3)
    for x, y in zip(a, b, strict=False):
        np.testing.assert_allclose(x, y, atol=1e-12)
    a = ms.regret_matching(mg, iterations=1500, gamma=1e-3)
    b = os_rm.regret_matching(mg, iterations=1500, gamma=1e-3)
    for x, y in zip(a, b, strict=False):
        np.testing.assert_allclose(x, y, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (4, 6), (3, 2, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("solver", ["prd", "rm"])
def test_prd_rm_c_kernel_with_merged_duplicates_matches_numpy(shape, solver):
    """The C path merges duplicate strategies (weighted projection / sums); the numpy path runs the full game."""
    from parsimon.games import _orm_kernel

    if _orm_kernel.load() is None:
        pytest.skip("no C compiler: the numpy loop is the only path")
    base = _random_game(shape, 3)
    # duplicate every player's first strategy twice and its last once
    idx = [[0, 0, *range(k), k - 1] for k in shape]
    mg = [m[np.ix_(*idx)] for m in base]
    fn = ms.projected_replicator_dynamics if solver == "prd" else ms.regret_matching
    for gamma in (1e-6, 0.05):  # 0.05: the exploration floor is active in the projection
        a = fn(mg, iterations=3000, gamma=gamma)
        b = fn(mg, iterations=3000, gamma=gamma, use_kernel=False)
        for x, y in zip(a, b, strict=False):
            assert x.shape == y.shape
            np.testing.assert_allclose(x, y, atol=1e-11)


@pytest.mark.parametrize("alpha", [0.3, 10.0])
def test_alpharank_matches_openspiel(alpha):
    from open_spiel.python.egt import alpharank as os_ar

    A, B = _random_game((3, 4), 11)
    _, _, pi, _, _ = os_ar.compute([A, B], alpha=alpha, m=50)
    mine = ms.alpharank([A, B], alpha=alpha, m=50)
    np.testing.assert_allclose(mine[0], pi.reshape(3, 4).sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(mine[1], pi.reshape(3, 4).sum(axis=0), atol=1e-10)


def test_alpharank_dominant_strategy():
    # prisoner's dilemma: defection (index 1) dominates; AlphaRank puts (almost) all mass on it
    A = np.array([[3.0, 0.0], [5.0, 1.0]])
    x, y = ms.alpharank([A, A.T], alpha=50.0)
    assert x[1] > 0.999 and y[1] > 0.999


def _hybrid_reference(mg, iterations, blend, temperature, diversity, momentum, gain_normalization=True,
                      return_average=True):
    """Line-by-line transcription of spec §2.2 on the full meta-game (no duplicate merging)."""
    n = len(mg)
    sig = [np.ones(k) / k for k in mg[0].shape]
    R = [np.zeros(k) for k in mg[0].shape]
    A = [np.zeros(k) for k in mg[0].shape]
    prev = [np.zeros(k) for k in mg[0].shape]
    for _ in range(iterations):
        for p in range(n):
            u = mg[p]
            for q in reversed(range(n)):
                if q != p:
                    u = np.tensordot(u, sig[q], axes=([q], [0]))
            c = u - np.mean(u)
            g = (1 + momentum) * c - momentum * prev[p]
            g = g + diversity * (1 - sig[p])
            if gain_normalization and np.max(np.abs(g)) > 1e-8:
                g = g / np.max(np.abs(g))
            R[p] = np.maximum(0, R[p] + g)
            orm = R[p] / R[p].sum() if R[p].sum() > 1e-12 else np.ones(len(u)) / len(u)
            e = np.exp((u - u.max()) / temperature)
            soft = e / e.sum() if e.sum() > 1e-12 else np.ones(len(u)) / len(u)
            sig[p] = (1 - blend) * orm + blend * soft
            prev[p] = c
            if return_average:
                A[p] = A[p] + sig[p]
    return [a / a.sum() for a in A] if return_average else sig


@pytest.mark.parametrize("avg", [True, False])
def test_hybrid_orm_matches_transcription_with_duplicates(avg):
    base = _random_game((3, 4, 3), 5, zero_sum=True)
    # duplicate strategies of every player: merged internally, must not change the dynamics
    mg = [m[[0, 1, 1, 2]][:, [0, 0, 1, 2, 3, 3]][:, :, [2, 0, 1, 2]] for m in base]
    kw = dict(iterations=200, blend=0.2, temperature=0.3, diversity=0.03, momentum=0.5, return_average=avg)
    ref = _hybrid_reference(mg, **kw)
    for merge in (True, False):
        for kernel in (True, False):
            out = ms.hybrid_orm(mg, merge_duplicates=merge, use_kernel=kernel, **kw)
            for x, y in zip(out, ref, strict=False):
                np.testing.assert_allclose(x, y, atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 2, 3)])
def test_c_kernel_matches_numpy_loop(shape):
    from parsimon.games import _orm_kernel

    if _orm_kernel.load() is None:
        pytest.skip("no C compiler: the numpy loop is the only path")
    mg = _random_game(shape, 2, zero_sum=len(shape) > 1)
    kw = dict(iterations=400, blend=0.1, temperature=0.05, diversity=0.01, momentum=0.2)
    for avg in (True, False):
        a = ms.hybrid_orm(mg, return_average=avg, **kw)
        b = ms.hybrid_orm(mg, return_average=avg, use_kernel=False, **kw)
        for x, y in zip(a, b, strict=False):
            np.testing.assert_allclose(x, y, atol=1e-12)


def test_shor_schedules():
    tr = ms.ShorTrainSolver()
    p1 = tr.params(1)
    assert p1["iterations"] == 1000 and p1["momentum"] == 0.5 and p1["return_average"]
    assert tr.params(300)["iterations"] == 5000 and tr.params(11)["iterations"] == 1200
    tr.calls = 1
    q = tr.params(5)
    assert q["blend"] == pytest.approx(0.3 * (1 - 1 / 75) + 0.05 / 75)
    assert q["temperature"] == pytest.approx(0.5 * (1 - 1 / 75) + 0.01 / 75)
    tr.calls = 200
    q = tr.params(5)
    assert (q["blend"], q["temperature"], q["diversity"]) == pytest.approx((0.05, 0.01, 0.001))
    ev = ms.ShorEvalSolver().params(1)
    assert ev["iterations"] == 8000 and ev["blend"] == 0.01 and ev["temperature"] == 0.001
    assert not ev["return_average"] and ms.ShorEvalSolver().params(1000)["iterations"] == 15000
    # the train solver counts its calls
    ms_rps = [RPS, -RPS]
    tr2 = ms.ShorTrainSolver(iteration_scale=0.05)
    tr2.get_meta_strategy(ms_rps)
    tr2.get_meta_strategy(ms_rps)
    assert tr2.state() == {"calls": 2}


def test_shor_solvers_approach_rps_equilibrium():
    x, y = ms.ShorTrainSolver().get_meta_strategy([RPS, -RPS])
    np.testing.assert_allclose(x, [1 / 3] * 3, atol=0.02)
    np.testing.assert_allclose(y, [1 / 3] * 3, atol=0.02)
    for s in ms.ShorEvalSolver().get_meta_strategy([PENNIES, -PENNIES]):
        assert s.sum() == pytest.approx(1.0) and (s >= 0).all()


def test_alpharank_sparse_stationary_matches_dense():
    rng = np.random.default_rng(4)
    S = 30
    r, c = np.nonzero(rng.random((S, S)) < 0.3)
    keep = r != c
    r, c = r[keep], c[keep]
    v = rng.random(len(r)) / S
    P = np.zeros((S, S))
    np.add.at(P, (r, c), v)
    P[np.arange(S), np.arange(S)] = 1.0 - P.sum(axis=1)
    np.testing.assert_allclose(ms._stationary_sparse(r, c, v, S), ms._stationary(P), atol=1e-10)
