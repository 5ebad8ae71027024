"""VAD-CFR: the vectorised components against a direct per-infoset transcription of Listing 5 (spec §1.2)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from parsimon.games import run_candidate, solve
from parsimon.games.backend import Backend
from parsimon.games.candidate import InfoStateNode
from parsimon.games.rules import VADCFR

# A direct transcription of Listing 5 in the per-infoset (OpenSpiel) interface, constants inlined.
LISTING5 = '''
class _Adaptive:
    def __init__(self):
        self._ewma_instantaneous_regret_magnitude = 0.0

    def _calculate_adaptive_params(self, iteration_number, cfr_regrets):
        m = max(abs(x) for x in cfr_regrets.values()) if cfr_regrets else 0.0
        if iteration_number == 0:
            self._ewma_instantaneous_regret_magnitude = m
        else:
            self._ewma_instantaneous_regret_magnitude = (
                0.1 * m + 0.9 * self._ewma_instantaneous_regret_magnitude)
        v = min(1.0, self._ewma_instantaneous_regret_magnitude / 2.0)
        alpha = max(0.1, 1.5 - 0.5 * v)
        beta = min(alpha, -0.1 - 0.5 * v)
        t1 = iteration_number + 1
        d_pos = t1 ** alpha / (t1 ** alpha + 1)
        d_neg = t1 ** beta / (t1 ** beta + 1)
        return v, d_pos, d_neg


class RegretAccumulator(_Adaptive):
    def update_accumulate_regret(self, info_state_node, iteration_number, cfr_regrets):
        v, d_pos, d_neg = self._calculate_adaptive_params(iteration_number, cfr_regrets)
        out = {}
        for a in info_state_node.legal_actions:
            r = cfr_regrets.get(a, 0.0)
            x = 1.1 * r if r > 0 else r
            R = info_state_node.cumulative_regret.get(a, 0.0)
            d = d_pos if R >= 0 else d_neg
            out[a] = max(-20.0, d * R + x)
        return out


class PolicyFromRegretAccumulator(_Adaptive):
    def get_updated_current_policy(self, info_state_node, iteration_number, cfr_regrets, previous_policy):
        v, d_pos, d_neg = self._calculate_adaptive_params(iteration_number, cfr_regrets)
        optimism = 1.0 / (1.0 + iteration_number / 100.0) * max(0.0, 1.0 - 0.5 * v)
        w = {}
        for a in info_state_node.legal_actions:
            r = cfr_regrets.get(a, 0.0)
            x = 1.1 * r if r > 0 else r
            R = info_state_node.cumulative_regret.get(a, 0.0)
            d = d_pos if R >= 0 else d_neg
            w[a] = max(0.0, d * R + optimism * x) ** 1.5
        total = sum(w.values())
        if total > 0:
            return {a: w[a] / total for a in w}
        return {a: 1.0 / len(w) for a in w}


class PolicyAccumulator:
    def update_accumulate_policy(self, info_state_node, iteration_number, info_state_policy, cfr_regrets,
                                 reach_prob, counterfactual_reach_prob):
        if iteration_number < 500:
            return dict(info_state_node.cumulative_policy)
        m = max(abs(x) for x in cfr_regrets.values()) if cfr_regrets else 0.0
        v_p = min(1.0, m / 2.0)
        gamma = min(4.0, 2.0 + 1.5 * v_p)
        w = (iteration_number + 1) ** gamma * (1.0 / (1.0 + m ** 1.5)) * max(0.1, (1.0 + m / 2.0) ** 0.5)
        return {a: info_state_node.cumulative_policy.get(a, 0.0) + w * reach_prob * info_state_policy[a]
                for a in info_state_node.legal_actions}
'''


def _listing5():
    mod = types.ModuleType("listing5")
    exec(LISTING5, mod.__dict__)
    return mod.RegretAccumulator(), mod.PolicyFromRegretAccumulator(), mod.PolicyAccumulator()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_components_match_listing5_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    K, A = 40, 4
    legal = rng.random((K, A)) < 0.7
    legal[np.arange(K), rng.integers(0, A, K)] = True
    legal[0] = [True, False, True, False]
    L = legal.astype(float)
    B = Backend("numpy")
    rule = VADCFR()
    rule.setup(types.SimpleNamespace(B=B, I=K, A=A))
    ra, pf, pa = _listing5()
    acts = [list(np.nonzero(legal[i])[0]) for i in range(K)]
    nodes = [InfoStateNode(acts[i], i, {a: 0.0 for a in acts[i]}, {a: 0.0 for a in acts[i]}) for i in range(K)]
    R = np.zeros((K, A))
    S = np.zeros((K, A))
    rows = slice(0, K)
    for t in [0, 1, 2, 7, 120, 499, 500, 501, 900]:
        # magnitudes on both sides of the 2.0 volatility saturation; exact zeros too
        scale = rng.choice([0.05, 1.0, 5.0])
        r = rng.normal(scale=scale, size=(K, A)) * (rng.random((K, A)) < 0.9) * L
        R = (R + rng.normal(scale=3.0, size=(K, A)) * (rng.random((K, A)) < 0.3)) * L  # perturb signs
        for i in range(K):
            nodes[i].cumulative_regret = {a: R[i, a] for a in acts[i]}
        sigma = rng.random((K, A)) * L
        sigma /= sigma.sum(axis=1, keepdims=True)
        reach = rng.random(K)
        cf = rng.random(K)
        R_new = rule.accumulate_regret(R, r, t, rows, L)
        S_new = rule.accumulate_policy(S, sigma, r, reach, cf, t, rows, L)
        sig_new = rule.policy_from_regret(R_new, r, sigma, t, rows, L)
        for i in range(K):
            rd = {a: r[i, a] for a in acts[i]}
            nodes[i].cumulative_regret = ra.update_accumulate_regret(nodes[i], t, rd)
            pol = {a: sigma[i, a] for a in acts[i]}
            nodes[i].cumulative_policy = pa.update_accumulate_policy(nodes[i], t, pol, rd, reach[i], cf[i])
            new_sig = pf.get_updated_current_policy(nodes[i], t, rd, pol)
            for a in acts[i]:
                assert R_new[i, a] == pytest.approx(nodes[i].cumulative_regret[a], rel=1e-12, abs=1e-13)
                assert S_new[i, a] == pytest.approx(nodes[i].cumulative_policy[a], rel=1e-12, abs=1e-13)
                assert sig_new[i, a] == pytest.approx(new_sig[a], rel=1e-10, abs=1e-12)
        assert rule.ewma_regret == pytest.approx(ra._ewma_instantaneous_regret_magnitude, rel=1e-12)
        assert rule.ewma_policy == pytest.approx(pf._ewma_instantaneous_regret_magnitude, rel=1e-12)
        assert np.all(R_new[~legal] == 0) and np.all(sig_new[~legal] == 0)
        R, S = R_new, S_new


def test_full_run_matches_listing5_through_candidate_adapter():
    game = "kuhn_poker(players=3)"
    ours = solve(game, "vad-cfr", 520, eval_every=260)
    ref = run_candidate(LISTING5, game, 520, eval_every=260)
    np.testing.assert_allclose(ours.average_policy.array, ref.average_policy.array, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.current_policy.array, ref.current_policy.array, rtol=0, atol=1e-10)
    assert ours.exploitability[-1][1] == pytest.approx(ref.exploitability[-1][1], abs=1e-10)


def test_warm_start_keeps_uniform_average_until_500():
    res = solve("kuhn_poker", "vad-cfr", 510, eval_every=10)
    curve = dict(res.exploitability)
    assert curve[10] == pytest.approx(0.4583333333333333, abs=1e-12)  # the uniform policy
    assert curve[500] == pytest.approx(0.4583333333333333, abs=1e-12)
    assert curve[510] < 0.05
