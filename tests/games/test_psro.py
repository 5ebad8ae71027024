"""PSRO on compiled games: exact meta-game entries, reach-weighted mixtures, OpenSpiel as the oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import parsimon.games as G
from parsimon.errors import ConfigError
from parsimon.games.psro import _Index, aggregate, mixture_policy, psro


def _joint(cg, pops, ks):
    pol = np.zeros((cg.num_infosets, cg.num_actions))
    for p, k in enumerate(ks):
        pol[cg.infosets_of(p)] = pops[p][k]
    return pol


@pytest.mark.parametrize("players,its", [(2, 4), (3, 3), (4, 2)])
def test_meta_game_entries_equal_policy_values(players, its):
    cg = G.compile_game(f"kuhn_poker(players={players})")
    res = psro(cg, "uniform", "uniform", its)
    assert [p.shape[0] for p in res.populations] == [its + 1] * players
    worst = 0.0
    for ks in itertools.product(range(its + 1), repeat=players):
        v = G.policy_value(cg, _joint(cg, res.populations, ks))
        worst = max(worst, max(abs(v[i] - res.meta_game[i][ks]) for i in range(players)))
    assert worst < 1e-12


def test_aggregate_is_realisation_equivalent():
    """The mixture's value against fixed opponents equals the weighted mean of the components' values."""
    cg = G.compile_game("leduc_poker")
    idx = _Index(cg)
    rng = np.random.default_rng(0)
    pols = [G.policy.random_policy(cg, s).array for s in range(3)]
    rows = np.stack([p[cg.infosets_of(0)] for p in pols])
    w = rng.dirichlet(np.ones(3))
    mixed = pols[0].copy()
    mixed[cg.infosets_of(0)] = aggregate(idx, 0, rows, w)
    opp = G.policy.random_policy(cg, 9).array
    opp[cg.infosets_of(0)] = mixed[cg.infosets_of(0)]
    want = 0.0
    for k in range(3):
        q = opp.copy()
        q[cg.infosets_of(0)] = rows[k]
        want += w[k] * G.policy_value(cg, q)[0]
    assert G.policy_value(cg, opp)[0] == pytest.approx(want, abs=1e-12)
    with pytest.raises(ConfigError, match="weights"):
        aggregate(idx, 0, rows, np.array([1.0, -1.0, 0.0]))


@pytest.mark.parametrize("solver", ["uniform", "nash"])
def test_kuhn2p_exploitability_matches_openspiel_aggregator(solver):
    import pyspiel
    from open_spiel.python.algorithms import exploitability, policy_aggregator

    cg = G.compile_game("kuhn_poker")
    res = psro(cg, solver, solver, 6)
    game = pyspiel.load_game("kuhn_poker")
    os_pops = []
    for p in range(2):
        lst = []
        for k in range(res.populations[p].shape[0]):
            full = cg.uniform_policy()
            full[cg.infosets_of(p)] = res.populations[p][k]
            lst.append(G.TabularPolicy(cg, full).to_openspiel(game))
        os_pops.append(lst)
    weights = [list(map(float, s)) for s in res.meta_strategies[-1]]
    agg = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], os_pops, weights)
    assert res.exploitability[-1][1] == pytest.approx(exploitability.exploitability(game, agg), abs=1e-10)
    # the whole recorded mixture is also consistent with our own exploitability
    idx = _Index(cg)
    assert G.exploitability(cg, mixture_policy(idx, res.populations, res.meta_strategies[-1])) == pytest.approx(
        res.exploitability[-1][1], abs=1e-12)


def test_nash_double_oracle_solves_kuhn2p():
    res = psro("kuhn_poker", "nash", "nash", 12)
    vals = [v for _, v in res.exploitability]
    assert vals[0] == pytest.approx(0.375, abs=1e-12)  # BR pair against uniform, Nash of the 2x2 game
    assert min(vals) < 1e-9  # exact double oracle reaches an exact equilibrium on Kuhn


def test_best_responses_randomise_over_ties():
    cg = G.compile_game("kuhn_poker")
    res = psro(cg, "uniform", "uniform", 1)
    br = res.populations[0][1]
    legal = cg.legal[cg.infosets_of(0)]
    # every row is a distribution, some rows mix (ties: unreached infosets are uniform)
    np.testing.assert_allclose(br.sum(axis=1), 1.0)
    assert ((br > 0) & (br < 1) & legal).any()


def test_shor_psro_decreases_exploitability_kuhn3p():
    res = psro("kuhn_poker(players=3)", "shor", "shor-eval", 8,
               train_kwargs={"iteration_scale": 0.2}, eval_kwargs={"iteration_scale": 0.2})
    vals = [v for _, v in res.exploitability]
    assert vals[-1] < 0.5 * vals[0]
    assert res.to_json()["population_sizes"] == [9, 9, 9]


def test_psro_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="iterations"):
        psro("kuhn_poker", "uniform", "uniform", 0)
    with pytest.raises(ConfigError, match="meta-solver"):
        psro("kuhn_poker", "nope", "uniform", 1)
    with pytest.raises(ConfigError, match="2-player"):
        psro("kuhn_poker(players=3)", "nash", "nash", 1)


def test_same_solver_reuse_matches_separate_solves():
    a = psro("kuhn_poker", "rm", "rm", 5, train_kwargs={"iterations": 300}, eval_kwargs={"iterations": 300})
    # different kwargs objects (same values) disable the reuse: the curves must agree exactly
    b = psro("kuhn_poker", "rm", "rm", 5, train_kwargs={"iterations": 300},
             eval_kwargs={"iterations": 300, "gamma": 1e-6})
    assert a.exploitability == b.exploitability


def test_psro_cli_config_file_and_solver_scale(tmp_path):
    """--config overrides config fields, command-line options win, --solver-scale reaches the solvers."""
    import json

    from typer.testing import CliRunner

    from parsimon.cli import app

    cfg_file = tmp_path / "psro.toml"
    cfg_file.write_text('iterations = 3\ntrain_solver = "prd"\neval_solver = "prd"\n')
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["games", "psro", "kuhn_poker", "--config", str(cfg_file), "--eval-solver", "rm",
                                 "--solver-scale", "0.01", "--out", str(out)])
    assert r.exit_code == 0, r.output
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["iterations"], saved["train_solver"], saved["eval_solver"], saved["solver_scale"]) == (
        3, "prd", "rm", 0.01)
    data = json.loads((out / "result.json").read_text())
    assert len(data["exploitability"]) == 3 and data["solver_scale"] == 0.01
    from parsimon.games.psro import PSROConfig

    assert PSROConfig(game="g", solver_scale=0.01).solver_kwargs("prd") == {"iterations": 1000}
    assert PSROConfig(game="g", solver_scale=0.5).solver_kwargs("shor") == {"iteration_scale": 0.5}
    bad = CliRunner().invoke(app, ["games", "psro", "kuhn_poker", "--config", str(tmp_path / "none.toml")])
    assert bad.exit_code == 2 and "none.toml" in bad.output
