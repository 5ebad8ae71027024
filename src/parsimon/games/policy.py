"""Tabular policies as arrays over (information set, action), convertible to OpenSpiel's ``TabularPolicy``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parsimon.errors import ConfigError

from .engine import CompiledGame

__all__ = ["TabularPolicy", "from_openspiel", "random_policy", "uniform_policy"]


@dataclass
class TabularPolicy:
    """``array[I, A]``: probability of action ``a`` (OpenSpiel action id) at infoset ``I`` of ``game``.

    Rows of information sets follow ``game.keys`` (sorted by player); illegal entries are 0.
    """

    game: CompiledGame
    array: np.ndarray

    def __post_init__(self):
        self.array = np.asarray(self.array, dtype=np.float64)
        want = (self.game.num_infosets, self.game.num_actions)
        if self.array.shape != want:
            raise ConfigError(f"policy array must have shape {want}, got {self.array.shape}")

    def action_probabilities(self, key: str) -> dict[int, float]:
        i = self.game.key_index()[key]
        return {int(a): float(self.array[i, a]) for a in np.nonzero(self.game.legal[i])[0]}

    def to_dict(self) -> dict[str, list[tuple[int, float]]]:
        out = {}
        for i, k in enumerate(self.game.keys):
            acts = np.nonzero(self.game.legal[i])[0]
            out[str(k)] = [(int(a), float(self.array[i, a])) for a in acts]
        return out

    def to_openspiel(self, game=None):
        """An ``open_spiel.python.policy.TabularPolicy`` with the same probabilities.

        ``game`` defaults to the (turn-based, if the original was simultaneous) game that was compiled.
        """
        from open_spiel.python import policy as os_policy

        g = game if game is not None else self.game.game
        tp = os_policy.TabularPolicy(g)
        arr = tp.action_probability_array
        missing = []
        for i, k in enumerate(self.game.keys):
            row = tp.state_lookup.get(str(k))
            if row is None:
                missing.append(str(k))
                continue
            arr[row, :] = self.array[i, : arr.shape[1]]
        if missing:
            raise ConfigError(f"{len(missing)} information states are not in OpenSpiel's table, e.g. {missing[0]!r}")
        return tp


def from_openspiel(cg: CompiledGame, os_policy) -> TabularPolicy:
    """Read an OpenSpiel policy (``TabularPolicy`` or any ``action_probabilities(state)`` policy with a
    ``state_lookup``) into our layout."""
    arr = np.zeros((cg.num_infosets, cg.num_actions))
    if hasattr(os_policy, "state_lookup") and hasattr(os_policy, "action_probability_array"):
        src = os_policy.action_probability_array
        for i, k in enumerate(cg.keys):
            arr[i] = src[os_policy.state_lookup[str(k)]][: cg.num_actions]
    else:
        raise ConfigError("from_openspiel needs an OpenSpiel TabularPolicy (with state_lookup)")
    return TabularPolicy(cg, arr * cg.legal)


def uniform_policy(cg: CompiledGame) -> TabularPolicy:
    return TabularPolicy(cg, cg.uniform_policy())


def random_policy(cg: CompiledGame, seed: int) -> TabularPolicy:
    """A random behaviour policy (Dirichlet(1) rows over legal actions), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=(cg.num_infosets, cg.num_actions)) * cg.legal
    return TabularPolicy(cg, x / x.sum(axis=1, keepdims=True))
