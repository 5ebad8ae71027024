"""The vectorised CFR driver: alternating updates over a compiled game, update rules as components.

One iteration, for each player ``p`` in turn (alternating updates, as OpenSpiel's CFR/CFR+/DCFR):
a forward pass gives the counterfactual and own reach of every history under the current policy (which
already contains this iteration's updates of players ``< p``), a backward pass gives ``p``'s values, and
the instantaneous regrets of all of ``p``'s infosets come out of one scatter-sum over ``p``'s edges.
Then the rule's three components run on ``p``'s rows (order documented in :mod:`parsimon.games.rules`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import as_tree
from .rules import UpdateRule, make_rule

__all__ = ["CFRDriver"]


class CFRDriver:
    """State of one CFR run: cumulative regrets ``R``, current policy ``sigma``, cumulative policy ``S``
    (all ``[I, A]`` on the backend) and the number of iterations done ``t``."""

    def __init__(self, game: Any, algo: Any = "cfr+", *, backend: Any = None, device: str | None = None):
        self.tree = as_tree(game, backend, device)
        self.cg = self.tree.cg
        self.B = self.tree.B
        self.rule: UpdateRule = make_rule(algo)
        self.rule.setup(self.tree)
        I, A = self.tree.I, self.tree.A
        self.R = self.B.zeros((I, A))
        self.S = self.B.zeros((I, A))
        self.sigma = self.B.floats(self.cg.uniform_policy())
        self.t = 0
        self.player_rows = [self.cg.infosets_of(p) for p in range(self.cg.num_players)]

    def iteration(self) -> None:
        tree, rule, t = self.tree, self.rule, self.t
        probs = tree.edge_probs(self.sigma)
        for p, sl in enumerate(self.player_rows):
            if sl.stop == sl.start:
                continue
            r, own, cf, _ = tree.player_regrets(probs, p, self.sigma)
            legal = tree.legal[sl]
            sig = self.sigma[sl]
            self.R[sl] = rule.accumulate_regret(self.R[sl], r, t, sl, legal)
            self.S[sl] = rule.accumulate_policy(self.S[sl], sig, r, own, cf, t, sl, legal)
            self.sigma[sl] = rule.policy_from_regret(self.R[sl], r, sig, t, sl, legal)
            tree.update_edge_probs(probs, self.sigma, p)  # only this player's edges changed
        self.t += 1

    def run(self, iterations: int) -> None:
        for _ in range(iterations):
            self.iteration()

    def average_policy(self) -> np.ndarray:
        """The normalised cumulative policy (uniform where nothing was accumulated), as numpy."""
        return self.B.to_numpy(self.rule.average_policy(self.S, self.tree.legal))

    def current_policy(self) -> np.ndarray:
        return self.B.to_numpy(self.sigma).copy()
