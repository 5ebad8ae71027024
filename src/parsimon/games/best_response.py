"""Exact best responses, NashConv and exploitability for n players, vectorised over the whole tree.

Algorithm (for responder ``i`` against the others' fixed policy): the counterfactual reach of every
history is one forward pass. Player ``i``'s infosets are decided from the deepest own depth (number of
``i``'s earlier decisions) upwards: with the decisions below already fixed, one backward pass gives the
exact child values of every history of the infosets at own depth ``k`` (perfect recall: the subtrees
below them contain only infosets of larger own depth), and the action value of ``(I, a)`` is
``sum_{h in I} cf_reach(h) * v(h a)``. ``K + 1`` backward passes in all (K = deepest own depth).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parsimon.errors import ConfigError
from parsimon.run import Result

from .backend import Tree, as_tree

__all__ = ["CurveResult", "best_response", "br_values", "nash_conv", "exploitability", "policy_value", "as_tree"]


class CurveResult(Result):
    """A result whose ``exploitability`` is a curve ``[(iteration, value), ...]``; the headline is its last value."""

    FINAL = "final_exploitability"

    @property
    def final_exploitability(self) -> float:
        """The exploitability at the last point of the curve (NaN when there is none)."""
        return self.exploitability[-1][1] if self.exploitability else float("nan")


def _policy_array(tree: Tree, policy) -> Any:
    cg = tree.cg
    if hasattr(policy, "array"):  # parsimon TabularPolicy
        policy = policy.array
    elif hasattr(policy, "action_probability_array") and hasattr(policy, "state_lookup"):
        from .policy import from_openspiel

        policy = from_openspiel(cg, policy).array
    arr = tree.B.floats(policy) if tree.B.name == "torch" else np.asarray(policy, dtype=np.float64)
    if tuple(arr.shape) != (cg.num_infosets, cg.num_actions):
        raise ConfigError(
            f"policy must have shape (infosets, actions) = {(cg.num_infosets, cg.num_actions)}, got {tuple(arr.shape)}"
        )
    return arr * tree.legal


def best_response(game: Any, policy, player: int, *, ties: str = "first", tol: float = 1e-12,
                  backend: Any = None):
    """Best response of ``player`` to ``policy`` (the other players' rows are used).

    Returns ``(br_rows, value)``: ``br_rows`` is an ``[I_p, A]`` array (rows of ``player``'s infosets, a
    pure action, or with ``ties='uniform'`` the uniform mix over actions within ``tol`` (relative to the
    largest magnitude) of the best), and ``value`` is the responder's expected return.
    """
    if ties not in ("first", "uniform"):
        raise ConfigError(f"ties must be 'first' or 'uniform', got {ties!r}")
    tree = as_tree(game, backend)
    cg = tree.cg
    if not 0 <= player < cg.num_players:
        raise ConfigError(f"player must be in 0..{cg.num_players - 1}, got {player}")
    B = tree.B
    pol = B.copy(_policy_array(tree, policy))
    sl = cg.infosets_of(player)
    n_i = sl.stop - sl.start
    A = tree.A
    pol[sl] = 0.0
    probs = tree.edge_probs(pol)
    cf = tree.cf_reach(probs, player)
    e, pe, rel = tree.player_edges[player]
    legal = tree.legal_bool[sl]
    depth = cg.own_depth[sl]
    terminal = tree.returns_p[player]
    br = B.zeros((n_i, A))
    for k in range(int(depth.max()) if n_i else -1, -1, -1):
        v = tree.backward(probs, terminal)
        q = B.scatter_sum(rel, cf[pe] * v[e], n_i * A).reshape(n_i, A)
        q = B.where(legal, q, -np.inf)
        rows = np.nonzero(depth == k)[0]
        rows_b = B.ints(rows)
        qk = q[rows_b]
        best = B.max(qk, axis=1, keepdims=True)
        if ties == "uniform":
            scale = B.maximum(B.abs(best), 1.0)
            sel = (qk >= best - tol * scale) & legal[rows_b]
            choice = B.normalise_rows(B.as_float(sel), legal[rows_b])
        else:
            idx = B.argmax(qk, axis=1)
            choice = B.zeros((len(rows), A))
            choice[B.arange(len(rows)), idx] = 1.0
        br[rows_b] = choice
        full = B.copy(pol)
        full[sl] = br
        probs = tree.edge_probs(full)
    v = tree.backward(probs, terminal)
    return br, float(B.to_numpy(v[0:1])[0])


def br_values(game: Any, policy, *, backend: Any = None) -> np.ndarray:
    """Best-response value of every player against ``policy``."""
    tree = as_tree(game, backend)
    return np.array([best_response(tree, policy, p)[1] for p in range(tree.n)])


def policy_value(game: Any, policy, *, backend: Any = None) -> np.ndarray:
    """Expected return of every player when all follow ``policy``."""
    tree = as_tree(game, backend)
    return tree.values(_policy_array(tree, policy))


def nash_conv(game: Any, policy, *, backend: Any = None) -> float:
    """``sum_i (u_i(BR_i(pi_-i), pi_-i) - u_i(pi))`` (OpenSpiel's NashConv), any number of players."""
    tree = as_tree(game, backend)
    on = policy_value(tree, policy)
    br = br_values(tree, policy)
    return float((br - on).sum())


def exploitability(game: Any, policy, *, backend: Any = None) -> float:
    """NashConv / number of players (the paper's metric; OpenSpiel's exploitability for 2 players)."""
    tree = as_tree(game, backend)
    return nash_conv(tree, policy) / tree.n
