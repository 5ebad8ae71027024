"""Array namespace for the engine: the same code runs on numpy arrays and on torch tensors (CPU or CUDA).

:class:`Backend` wraps the handful of operations where numpy and torch differ (scatter-sum, reductions
along an axis, dtype/device handling); everything else (indexing, arithmetic, comparisons) is written with
operators that both libraries share. :class:`Tree` holds a compiled game's arrays on a backend together
with the index lists the driver and the best response need, and implements the two passes of the engine:
a forward pass (reach probabilities, level by level) and a backward pass (expected values, level by
level), each over all histories of a depth at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parsimon.errors import ConfigError
from parsimon.registry import Registry

from .engine import TERMINAL, CompiledGame

__all__ = ["BACKENDS", "Backend", "Tree", "as_tree", "get_backend"]

#: The array libraries of the engine (the factory builds a :class:`Backend`: ``BACKENDS.get(name)(device)``).
BACKENDS: Registry = Registry("backend")
BACKENDS.register("numpy", lambda device=None: Backend("numpy", device), describe="numpy arrays on the CPU")
BACKENDS.register("torch", lambda device=None: Backend("torch", device),
                  describe="torch tensors (CUDA when available, or --device)")


class Backend:
    """numpy (``name='numpy'``) or torch (``name='torch'``, any device) in float64."""

    def __init__(self, name: str = "numpy", device: str | None = None):
        BACKENDS.check(name)
        self.name = name
        if name == "torch":
            try:
                import torch
            except ImportError as exc:
                from parsimon.errors import DependencyNotInstalled

                raise DependencyNotInstalled("torch", "torch", "the torch backend of the game engine") from exc

            self.torch = torch
            if device is None:
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self.device = torch.device(device)
        else:
            if device not in (None, "cpu"):
                raise ConfigError(f"the numpy backend runs on the CPU only (device={device!r})")
            self.device = "cpu"

    # -- construction / conversion
    def asarray(self, x, dtype=None):
        if self.name == "numpy":
            return np.asarray(x, dtype=dtype)
        t = self.torch
        tdt = {None: None, np.float64: t.float64, np.int64: t.int64, bool: t.bool}[dtype]
        if isinstance(x, t.Tensor):
            return x.to(device=self.device, dtype=tdt) if tdt else x.to(self.device)
        return t.as_tensor(np.asarray(x), dtype=tdt, device=self.device)

    def floats(self, x):
        return self.asarray(x, np.float64)

    def ints(self, x):
        return self.asarray(x, np.int64)

    def as_float(self, x):
        """Cast (e.g. a boolean mask) to float64."""
        if self.name == "numpy":
            return np.asarray(x, dtype=np.float64)
        return x.to(self.torch.float64)

    def zeros(self, shape):
        if self.name == "numpy":
            return np.zeros(shape)
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def ones(self, shape):
        if self.name == "numpy":
            return np.ones(shape)
        return self.torch.ones(shape, dtype=self.torch.float64, device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        if self.name == "numpy":
            return np.asarray(x)
        return x.detach().cpu().numpy()

    def copy(self, x):
        return x.copy() if self.name == "numpy" else x.clone()

    # -- numerics that differ between the libraries
    def scatter_sum(self, idx, vals, n: int):
        """``out[j] = sum(vals[idx == j])`` for j < n (idx int64, vals float64)."""
        if self.name == "numpy":
            return np.bincount(idx, weights=vals, minlength=n)
        out = self.torch.zeros(n, dtype=vals.dtype, device=self.device)
        return out.index_add_(0, idx, vals)

    def _reduce(self, x, numpy_name: str, torch_name: str, axis, keepdims: bool):
        if self.name == "numpy":
            return getattr(x, numpy_name)(axis=axis, keepdims=keepdims)
        if axis is None:
            return getattr(x, numpy_name)()
        return getattr(x, torch_name)(dim=axis, keepdim=keepdims)

    def sum(self, x, axis=None, keepdims=False):
        return self._reduce(x, "sum", "sum", axis, keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self._reduce(x, "max", "amax", axis, keepdims)

    def _extreme(self, x, y, larger: bool):
        """Element-wise maximum (``larger``) or minimum; on torch a Python number becomes a clamp bound."""
        if self.name == "numpy":
            return (np.maximum if larger else np.minimum)(x, y)
        t = self.torch
        if not isinstance(x, t.Tensor):
            x, y = y, x
        if not isinstance(y, t.Tensor):
            return t.clamp(x, min=y) if larger else t.clamp(x, max=y)
        return (t.maximum if larger else t.minimum)(x, y)

    def maximum(self, x, y):
        return self._extreme(x, y, True)

    def minimum(self, x, y):
        return self._extreme(x, y, False)

    def where(self, c, x, y):
        if self.name == "numpy":
            return np.where(c, x, y)
        t = self.torch
        if not isinstance(x, t.Tensor):
            x = t.tensor(x, dtype=t.float64, device=self.device)
        if not isinstance(y, t.Tensor):
            y = t.tensor(y, dtype=t.float64, device=self.device)
        return t.where(c, x, y)

    def abs(self, x):
        return np.abs(x) if self.name == "numpy" else x.abs()

    def argmax(self, x, axis):
        return x.argmax(axis=axis) if self.name == "numpy" else x.argmax(dim=axis)

    def arange(self, n):
        if self.name == "numpy":
            return np.arange(n)
        return self.torch.arange(n, device=self.device)

    def ewma_scan(self, m, e0: float, decay: float):
        """Sequential ``e_k = decay * m_k + (1 - decay) * e_{k-1}`` over a 1-D array; returns all ``e_k``.

        (The VAD-CFR volatility EWMA visited in a fixed order, vectorised.)
        """
        m_np = self.to_numpy(m).astype(np.float64)
        if m_np.size == 0:
            return m
        from scipy.signal import lfilter

        # y[k] = decay*m[k] + (1-decay)*y[k-1], y[-1] = e0
        zi = np.array([(1.0 - decay) * e0])
        y, _ = lfilter([decay], [1.0, -(1.0 - decay)], m_np, zi=zi)
        return self.floats(y)

    def normalise_rows(self, x, mask):
        """Rows of ``x`` (non-negative) divided by their sum; uniform over ``mask`` where the sum is 0."""
        mask = self.as_float(mask)
        s = self.sum(x, axis=1, keepdims=True)
        cnt = self.sum(mask, axis=1, keepdims=True)
        uni = mask / self.maximum(cnt, 1.0)
        pos = s > 0
        return self.where(pos, x / self.where(pos, s, 1.0), uni)


def get_backend(backend: Any = "numpy", device: str | None = None) -> Backend:
    """A :class:`Backend` by name (see :data:`BACKENDS`), or ``backend`` itself if it is one."""
    if isinstance(backend, Backend):
        return backend
    return BACKENDS.get(backend)(device)


def as_tree(game: Any, backend: Any = None, device: str | None = None) -> Tree:
    """``game`` (an OpenSpiel string or game, a :class:`CompiledGame` or a :class:`Tree`) on a backend.

    A Tree is used as it is unless another backend (or device) is asked for; then its compiled game is put
    on that backend. ``backend=None`` means numpy, or the Tree's own.
    """
    from .engine import compile_game

    if isinstance(game, Tree):
        if backend is None or (isinstance(backend, Backend) and backend is game.B):
            return game
        if isinstance(backend, str) and backend == game.B.name and device in (None, str(game.B.device)):
            return game
        return Tree(game.cg, backend, device)
    return Tree(compile_game(game), backend or "numpy", device)


class Tree:
    """A compiled game on a backend, with the forward/backward passes of the engine."""

    def __init__(self, cg: CompiledGame, backend: Any = "numpy", device: str | None = None):
        self.cg = cg
        B = self.B = get_backend(backend, device)
        self.n = cg.num_players
        self.A = cg.num_actions
        self.N = cg.num_nodes
        self.I = cg.num_infosets
        par = cg.parent
        self.levels = []  # per depth d >= 1: (lo, hi, parent ids, parent ids relative to the level above)
        lp = cg.level_ptr
        for d in range(1, cg.num_levels):
            lo, hi = int(lp[d]), int(lp[d + 1])
            plo, phi = int(lp[d - 1]), int(lp[d])
            p = par[lo:hi]
            self.levels.append((lo, hi, plo, phi, B.ints(p), B.ints(p - plo)))
        act_par = np.full(self.N, TERMINAL, dtype=np.int64)
        act_par[1:] = cg.actor[par[1:]]
        self.np_actor_of_parent = act_par
        dec_edge = act_par >= 0
        self.np_dec_edges = np.nonzero(dec_edge)[0]
        flat = np.zeros(self.N, dtype=np.int64)
        flat[dec_edge] = cg.infoset[par[dec_edge]] * self.A + cg.action[dec_edge]
        self.dec_edges = B.ints(self.np_dec_edges)
        self.dec_flat = B.ints(flat[dec_edge])
        self.chance_prob = B.floats(cg.chance_prob)
        self.returns = B.floats(cg.returns)
        self.legal = B.floats(cg.legal.astype(np.float64))
        self.legal_bool = B.asarray(cg.legal, bool)
        self.actor_of_parent = B.ints(act_par)
        # per player: edges out of the player's decision nodes, their parents, and their (I, a) index
        # relative to the player's first infoset; the player's decision nodes and their infosets.
        self.player_edges = []
        self.player_nodes = []
        for p in range(self.n):
            e = np.nonzero(act_par == p)[0]
            off = int(cg.player_ptr[p]) * self.A
            self.player_edges.append((B.ints(e), B.ints(par[e]), B.ints(flat[e] - off)))
            nodes = np.nonzero(cg.actor == p)[0]
            self.player_nodes.append((B.ints(nodes), B.ints(cg.infoset[nodes] - int(cg.player_ptr[p]))))
        self.is_player_edge = [B.asarray(act_par == p, bool) for p in range(self.n)]
        self.own_depth = cg.own_depth
        # the forward pass repeats each parent's value over its (contiguous) children
        self.fwd_levels = []
        for d in range(1, cg.num_levels):
            lo, hi = int(lp[d]), int(lp[d + 1])
            p = par[lo:hi]
            starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]]) if hi > lo else np.zeros(0, dtype=np.int64)
            counts = np.diff(np.r_[starts, hi - lo])
            self.fwd_levels.append((lo, hi, B.ints(p[starts]), B.ints(counts)))
        # per-player terminal values, contiguous
        self.returns_p = [B.floats(np.ascontiguousarray(cg.returns[:, p])) for p in range(self.n)]
        # own reach per infoset through the sequence-form parent links, one own depth at a time
        self.own_groups = []
        for p in range(self.n):
            sl = cg.infosets_of(p)
            depth = cg.own_depth[sl]
            groups = []
            for k in range(1, int(depth.max()) + 1 if depth.size else 1):
                rows = np.nonzero(depth == k)[0]
                ps = cg.parent_seq[sl][rows]
                groups.append((B.ints(rows), B.ints(ps // self.A - sl.start), B.ints(ps)))
            self.own_groups.append(groups)

    # ---------------------------------------------------------------- passes
    def edge_probs(self, policy):
        """Probability of the edge into every node under ``policy`` ([I, A]) and chance."""
        B = self.B
        probs = B.copy(self.chance_prob)
        flat = policy.reshape(-1)
        probs[self.dec_edges] = flat[self.dec_flat]
        return probs

    def update_edge_probs(self, probs, policy, player: int):
        """Refresh, in place, the probabilities of the edges out of ``player``'s decision nodes."""
        e, _pe, rel = self.player_edges[player]
        off = int(self.cg.player_ptr[player]) * self.A
        probs[e] = policy.reshape(-1)[rel + off]
        return probs

    def forward(self, factors):
        """Products of ``factors`` ([N] or [N, k]) along the path from the root (root = 1)."""
        B = self.B
        out = B.copy(factors)
        out[0] = 1.0
        if B.name == "numpy" and out.ndim == 1:
            for lo, hi, up, cnt in self.fwd_levels:
                out[lo:hi] *= np.repeat(out[up], cnt)
            return out
        for lo, hi, _plo, _phi, p, _prel in self.levels:
            out[lo:hi] = out[p] * factors[lo:hi]
        return out

    def cf_reach(self, probs, player: int):
        """Reach of every history counting only the other players' and chance's probabilities."""
        return self.forward(self.B.where(self.is_player_edge[player], 1.0, probs))

    def own_reach_infosets(self, policy, player: int):
        """The player's own reach of each of its infosets ([I_p]), via the sequence-form parent links."""
        sl = self.cg.infosets_of(player)
        own = self.B.ones(sl.stop - sl.start)
        flat = policy.reshape(-1)
        for rows, prow, ps in self.own_groups[player]:
            own[rows] = own[prow] * flat[ps]
        return own

    def reach_for(self, probs, player: int):
        """Counterfactual reach (others and chance) and own reach of ``player`` at every history."""
        B = self.B
        own_edge = self.is_player_edge[player]
        cf_f = B.where(own_edge, 1.0, probs)
        own_f = B.where(own_edge, probs, 1.0)
        if B.name == "numpy":
            both = np.stack([cf_f, own_f], axis=1)
        else:
            both = B.torch.stack([cf_f, own_f], dim=1)
        r = self.forward(both)
        return r[:, 0], r[:, 1]

    def backward(self, probs, terminal_values):
        """Expected value at every history given edge probabilities; ``terminal_values`` is [N] or [N, k]
        (zero at non-terminals)."""
        B = self.B
        v = B.copy(terminal_values)
        two_d = len(v.shape) == 2
        for lo, hi, plo, phi, _p, prel in reversed(self.levels):
            w = probs[lo:hi]
            if two_d:
                w = w[:, None] * v[lo:hi]
                for k in range(v.shape[1]):
                    v[plo:phi, k] = v[plo:phi, k] + B.scatter_sum(prel, w[:, k], phi - plo)
            else:
                v[plo:phi] = v[plo:phi] + B.scatter_sum(prel, w * v[lo:hi], phi - plo)
        return v

    def values(self, policy):
        """Expected return of every player at the root under ``policy``."""
        probs = self.edge_probs(policy)
        v = self.backward(probs, self.returns)
        return self.B.to_numpy(v[0])

    def player_regrets(self, probs, player: int, policy=None):
        """Instantaneous counterfactual regrets ``cf_reach * (v(h,a) - v(h))`` summed over each infoset's
        histories, for ``player``'s infosets ([I_p, A]), plus own reach and counterfactual reach per
        infoset and the player's expected value at the root. ``policy`` ([I, A]) gives the own reach
        through the sequence form; without it the own reach comes from a forward pass."""
        B = self.B
        sl = self.cg.infosets_of(player)
        n_i = sl.stop - sl.start
        nodes, nrel = self.player_nodes[player]
        if policy is None:
            cf, own = self.reach_for(probs, player)
            # own reach is the same for every history of an infoset (perfect recall): take any one
            own_I = B.zeros(n_i)
            own_I[nrel] = own[nodes]
        else:
            cf = self.cf_reach(probs, player)
            own_I = self.own_reach_infosets(policy, player)
        v = self.backward(probs, self.returns_p[player])
        e, pe, rel = self.player_edges[player]
        contrib = cf[pe] * (v[e] - v[pe])
        r = B.scatter_sum(rel, contrib, n_i * self.A).reshape(n_i, self.A)
        cf_I = B.scatter_sum(nrel, cf[nodes], n_i)
        return r, own_I, cf_I, v[0]
