"""CFR update rules as components, vectorised over information sets.

Each rule has the paper's three roles (regret accumulator, policy from regrets, policy accumulator). The
driver (:mod:`parsimon.games.cfr`) calls them once per player per iteration, on that player's rows only:

* ``R, r, sigma, S`` are ``[I_p, A]`` arrays (cumulative regret, instantaneous counterfactual regret
  ``sum_{h in I} cf_reach(h) (v(h,a) - v(h))``, current policy, cumulative policy); illegal entries are 0;
* ``reach`` is the player's own reach of each infoset, ``cf_reach`` the sum over its histories of the
  others' and chance's reach; ``t`` is the 0-indexed iteration (as in the paper's interface);
* ``rows`` is the slice of the player's infosets in the global numbering (for rules with per-infoset
  state) and ``legal`` the float legal mask of those rows.

Order per player (spec §1.1, open choice 1 of §8): (1) ``accumulate_regret``, (2) ``accumulate_policy``
with the policy used in the traversal, (3) ``policy_from_regret`` for the next traversal. This is what
OpenSpiel does for CFR/CFR+/DCFR (its average-policy update happens during the traversal, its RM+/discount
step and new policy after it), so ``cfr``, ``cfr+``, ``lcfr``, ``dcfr`` reproduce OpenSpiel exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parsimon.registry import Registry

__all__ = ["UpdateRule", "make_rule", "ALGORITHMS", "ALIASES", "CFR", "CFRPlus", "DCFR", "PCFRPlus", "PDCFRPlus",
           "VADCFR", "AODCFR"]


class UpdateRule:
    """Base class: vanilla CFR (R += r, regret matching, uniform averaging)."""

    name = "cfr"

    def setup(self, tree) -> None:
        self.B = tree.B
        self.I, self.A = tree.I, tree.A

    def accumulate_regret(self, R, r, t: int, rows: slice, legal):
        return R + r

    def policy_from_regret(self, R, r, sigma, t: int, rows: slice, legal):
        return self.B.normalise_rows(self.B.maximum(R, 0.0) * legal, legal)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t: int, rows: slice, legal):
        return S + reach[:, None] * sigma

    def average_policy(self, S, legal):
        return self.B.normalise_rows(S * legal, legal)


class CFR(UpdateRule):
    name = "cfr"


class CFRPlus(UpdateRule):
    """CFR+: regret matching+ (floor at 0) and linear averaging with weight t+1 (OpenSpiel's)."""

    name = "cfr+"

    def accumulate_regret(self, R, r, t, rows, legal):
        return self.B.maximum(R + r, 0.0)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        return S + float(t + 1) * reach[:, None] * sigma


class DCFR(UpdateRule):
    """Discounted CFR as in OpenSpiel's ``discounted_cfr``: after adding this iteration's regret, multiply
    positive cumulative regrets by T^a/(T^a+1) and negative ones by T^b/(T^b+1) (T = t+1); the policy
    contribution is weighted T^g (the cumulative policy itself is not discounted, as in OpenSpiel).
    LCFR is (a, b, g) = (1, 1, 1)."""

    def __init__(self, alpha: float = 1.5, beta: float = 0.0, gamma: float = 2.0, name: str = "dcfr"):
        self.alpha, self.beta, self.gamma, self.name = alpha, beta, gamma, name

    def accumulate_regret(self, R, r, t, rows, legal):
        T = float(t + 1)
        R = R + r
        dp = T**self.alpha / (T**self.alpha + 1.0)
        dn = T**self.beta / (T**self.beta + 1.0)
        return self.B.where(R >= 0, R * dp, R * dn)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        return S + float(t + 1) ** self.gamma * reach[:, None] * sigma


class PCFRPlus(UpdateRule):
    """Predictive CFR+ (Farina et al. 2021): R = max(0, R + r); the next policy regret-matches
    max(0, R + m) with the prediction m = this iteration's instantaneous regret r; averaging weight
    (t+1)^2 (open choice 4 of §8: exponent 2, as in Farina et al.'s experiments)."""

    name = "pcfr+"

    def __init__(self, avg_exponent: float = 2.0):
        self.avg_exponent = avg_exponent

    def accumulate_regret(self, R, r, t, rows, legal):
        return self.B.maximum(R + r, 0.0)

    def policy_from_regret(self, R, r, sigma, t, rows, legal):
        return self.B.normalise_rows(self.B.maximum(R + r, 0.0) * legal, legal)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        return S + float(t + 1) ** self.avg_exponent * reach[:, None] * sigma


class PDCFRPlus(UpdateRule):
    """Predictive discounted CFR+ (Xu et al. 2024, the paper's "DPCFR+"), T = t+1:
    R_T = max(0, R_{T-1} (T-1)^a/((T-1)^a+1) + r_T); next policy from max(0, R_T T^a/(T^a+1) + r_T)
    (prediction = last instantaneous regret); cumulative policy S_T = S_{T-1} ((T-1)/T)^g + reach sigma_T.
    a = 2.3, g = 5 as in the authors' reference configuration."""

    name = "pdcfr+"

    def __init__(self, alpha: float = 2.3, gamma: float = 5.0):
        self.alpha, self.gamma = alpha, gamma

    def _d(self, T: float) -> float:
        return T**self.alpha / (T**self.alpha + 1.0) if T > 0 else 0.0

    def accumulate_regret(self, R, r, t, rows, legal):
        return self.B.maximum(R * self._d(float(t)) + r, 0.0)

    def policy_from_regret(self, R, r, sigma, t, rows, legal):
        return self.B.normalise_rows(self.B.maximum(R * self._d(float(t + 1)) + r, 0.0) * legal, legal)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        T = float(t + 1)
        return S * ((T - 1.0) / T) ** self.gamma + reach[:, None] * sigma


class VADCFR(UpdateRule):
    """VAD-CFR, Listing 5 of arXiv 2602.16928 v1 (spec §1.2), vectorised.

    Open choices (§8): the volatility EWMA is one scalar per component object, updated once per call in
    the driver's visiting order (players in turn, infosets of a player in our fixed order — OpenSpiel's
    discovery order within the player), every infoset of the player is visited each iteration (reached or
    not), and the regret accumulator and the policy-from-regret component each keep their own copy (both
    see the same sequence of magnitudes, so they hold the same value). The sequential EWMA over the
    infosets of one call is computed exactly with a linear-recurrence scan. Before t = 500 the cumulative
    policy stays 0, so the average policy is uniform (open choice 3).
    """

    name = "vad-cfr"

    def __init__(self, base_alpha=1.5, base_beta=-0.1, volatility_sensitivity=0.5,
                 max_expected_instantaneous_regret=2.0, boost=1.1, ewma_decay=0.1, negative_regret_cap=-20.0,
                 initial_optimism=1.0, optimism_decay=100.0, positive_policy_exponent=1.5, base_gamma=2.0,
                 gamma_max=4.0, gamma_volatility_sensitivity=1.5, warmup_iterations=500,
                 stability_exponent=1.5, regret_magnitude_weighting_exponent=0.5):
        self.base_alpha, self.base_beta = base_alpha, base_beta
        self.vs, self.max_r = volatility_sensitivity, max_expected_instantaneous_regret
        self.boost, self.ewma_decay, self.cap = boost, ewma_decay, negative_regret_cap
        self.opt0, self.opt_decay, self.pexp = initial_optimism, optimism_decay, positive_policy_exponent
        self.gamma0, self.gamma_max, self.gvs = base_gamma, gamma_max, gamma_volatility_sensitivity
        self.warmup, self.stab, self.mag_exp = warmup_iterations, stability_exponent, regret_magnitude_weighting_exponent

    def setup(self, tree):
        super().setup(tree)
        self.ewma_regret = 0.0  # RegretAccumulator's copy
        self.ewma_policy = 0.0  # PolicyFromRegretAccumulator's copy

    def _magnitude(self, r):
        return self.B.max(self.B.abs(r), axis=1)

    def _params(self, m, t, ewma_prev):
        """Per-row (E, v, d_pos, d_neg) and the last E (the scalar left on the object)."""
        B = self.B
        if t == 0:
            E = B.copy(m)
        else:
            E = B.ewma_scan(m, ewma_prev, self.ewma_decay)
        last = float(B.to_numpy(E[-1:])[0]) if E.shape[0] else ewma_prev
        v = B.minimum(E / self.max_r, 1.0)
        alpha = B.maximum(self.base_alpha - self.vs * v, 0.1)
        beta = B.minimum(alpha, self.base_beta - self.vs * v)
        T = float(t + 1)
        pa, pb = T**alpha, T**beta
        return v, pa / (pa + 1.0), pb / (pb + 1.0), last

    def _boosted(self, r):
        return self.B.where(r > 0, self.boost * r, r)

    def accumulate_regret(self, R, r, t, rows, legal):
        B = self.B
        _, dp, dn, self.ewma_regret = self._params(self._magnitude(r), t, self.ewma_regret)
        d = B.where(R >= 0, dp[:, None] * R, dn[:, None] * R)
        return B.maximum(d + self._boosted(r), self.cap) * legal

    def policy_from_regret(self, R, r, sigma, t, rows, legal):
        B = self.B
        v, dp, dn, self.ewma_policy = self._params(self._magnitude(r), t, self.ewma_policy)
        opt = 1.0 / (1.0 + t / self.opt_decay) * B.maximum(1.0 - 0.5 * v, 0.0)
        proj = B.where(R >= 0, dp[:, None] * R, dn[:, None] * R) + opt[:, None] * self._boosted(r)
        w = B.maximum(proj, 0.0) ** self.pexp * legal
        return B.normalise_rows(w, legal)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        if t < self.warmup:
            return S
        B = self.B
        m = self._magnitude(r)
        vp = B.minimum(m / self.max_r, 1.0)
        gamma = B.minimum(self.gamma0 + self.gvs * vp, self.gamma_max)
        w = float(t + 1) ** gamma * (1.0 / (1.0 + m**self.stab)) * B.maximum(
            (1.0 + m / self.max_r) ** self.mag_exp, 0.1)
        return S + (w * reach)[:, None] * sigma


class AODCFR(UpdateRule):
    """AOD-CFR (Appendix 7.2, Listing 7 as summarised in spec §1.4), T = t+1, p = min(1, T/500):
    alpha = 1 + 1.5p, beta = 0.5 - 0.5p, gamma = 1 + 4p.
    Regret: R <- d R + s r with d = T^alpha/(T^alpha+1) if R >= 0 else T^beta/(T^beta+1) (sign of the
    previous R; R = 0 counts as non-negative, as in DCFR) and s = 1.1 / 0.9 (R >= 0, r > 0 / r <= 0),
    0.7 / 1.2 (R < 0, r > 0 / r <= 0). Policy: per-infoset EMA of R (decay 0.1, started at the first R),
    sigma ∝ max(0, R + 0.5 (R - EMA))^2 (uniform if 0). Average: S <- S T^g/(T^g+1) + T^g reach sigma.
    These tie-break and initialisation choices are ours (the listing was summarised, §8)."""

    name = "aod-cfr"

    def setup(self, tree):
        super().setup(tree)
        self.ema = self.B.zeros((tree.I, tree.A))
        self.ema_started = np.zeros(tree.I, dtype=bool)

    @staticmethod
    def _sched(t):
        T = float(t + 1)
        p = min(1.0, T / 500.0)
        return T, 1.0 + 1.5 * p, 0.5 - 0.5 * p, 1.0 + 4.0 * p

    def accumulate_regret(self, R, r, t, rows, legal):
        B = self.B
        T, a, b, _ = self._sched(t)
        pos = R >= 0
        d = B.where(pos, T**a / (T**a + 1.0), T**b / (T**b + 1.0))
        s = B.where(pos, B.where(r > 0, 1.1, 0.9), B.where(r > 0, 0.7, 1.2))
        return (d * R + s * r) * legal

    def policy_from_regret(self, R, r, sigma, t, rows, legal):
        B = self.B
        if not self.ema_started[rows].all():
            self.ema[rows] = R
            self.ema_started[rows] = True
        else:
            self.ema[rows] = 0.1 * R + 0.9 * self.ema[rows]
        x = B.maximum(R + 0.5 * (R - self.ema[rows]), 0.0) ** 2 * legal
        return B.normalise_rows(x, legal)

    def accumulate_policy(self, S, sigma, r, reach, cf_reach, t, rows, legal):
        T, _, _, g = self._sched(t)
        w = T**g
        return S * (w / (w + 1.0)) + w * reach[:, None] * sigma


#: The update rules by name: ``ALGORITHMS.get(name)()`` builds a fresh rule (rules keep per-run state).
ALGORITHMS: Registry = Registry("algo")
ALGORITHMS.register("cfr", CFR, describe="vanilla CFR: regret matching, uniform averaging")
ALGORITHMS.register("cfr+", CFRPlus, describe="CFR+: regret matching+, linear averaging")
ALGORITHMS.register("lcfr", lambda: DCFR(1.0, 1.0, 1.0, name="lcfr"), describe="linear CFR: DCFR(1, 1, 1)")
ALGORITHMS.register("dcfr", DCFR, describe="discounted CFR (1.5, 0, 2)")
ALGORITHMS.register("pcfr+", PCFRPlus, describe="predictive CFR+")
ALGORITHMS.register("pdcfr+", PDCFRPlus, describe="predictive discounted CFR+ (the paper's DPCFR+)")
ALGORITHMS.register("vad-cfr", VADCFR, describe="VAD-CFR, the paper's evolved algorithm")
ALGORITHMS.register("aod-cfr", AODCFR, describe="AOD-CFR, the paper's appendix variant")

#: Other spellings accepted for the names above.
ALIASES = {"cfrplus": "cfr+", "cfr-plus": "cfr+", "pcfrplus": "pcfr+", "pdcfrplus": "pdcfr+", "dpcfr+": "pdcfr+",
           "vadcfr": "vad-cfr", "aodcfr": "aod-cfr"}


def make_rule(algo: Any) -> UpdateRule:
    """A fresh update rule by name (see :data:`ALGORITHMS`; case, ``_`` and the :data:`ALIASES` spellings are
    accepted), or ``algo`` itself if it is already a rule."""
    if isinstance(algo, UpdateRule) or (hasattr(algo, "accumulate_regret") and hasattr(algo, "setup")):
        return algo
    key = str(algo).lower().replace("_", "-")
    return ALGORITHMS.get(ALIASES.get(key, key))()
