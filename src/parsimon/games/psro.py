"""PSRO on compiled games: populations of tabular policies as arrays, exact payoffs, exact best responses.

Layout (``cg`` a :class:`~parsimon.games.engine.CompiledGame`, ``I_p`` = player ``p``'s infosets):

* population of player ``p``: an array ``[K_p, I_p, A]`` of behaviour policies (rows of ``p``'s infosets);
* sequence reach of a policy: for every history ``h``, the product of ``p``'s own action probabilities on
  the path to ``h`` (``[K_p, N]`` for the whole population, one pass over depth levels);
* meta-game: ``M_i[k_0, ..., k_{n-1}] = sum_z c(z) u_i(z) prod_p rho_p^{k_p}(z)`` over terminals ``z``
  (``c`` = chance reach) — an exact tensor contraction, filled incrementally: when populations grow, only
  the blocks with at least one new index are computed;
* mixture of a population with weights ``w``: the realisation-equivalent behaviour policy
  ``sigma(I, a) = sum_k w_k r_k(I) pi_k(I, a) / sum_k w_k r_k(I)`` with ``r_k(I)`` the own reach of ``I``
  (OpenSpiel's ``PolicyAggregator`` semantics; uniform where no policy reaches ``I``);
* oracle: exact best response (``parsimon.games.best_response``) that mixes uniformly over actions of
  equal value (``ties='uniform'``; the paper's choice read as a mixed policy, so PSRO is deterministic).

Loop (spec §4.1): start from the uniform policy; each iteration ``phi = train(M)``, every player adds a
best response to the others' ``phi``-mixtures, ``M`` is extended, ``psi = eval(M)`` and the exploitability
(NashConv / n) of the ``psi``-mixture is recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parsimon.errors import ConfigError
from parsimon.progress import TaskBar

from .backend import as_tree
from .best_response import CurveResult, best_response
from .best_response import exploitability as _exploitability
from .engine import CHANCE, MAX_NODES, TERMINAL, CompiledGame, positive_int
from .meta_solvers import SOLVERS, MetaSolver, get_solver

__all__ = ["PSROConfig", "PSROResult", "psro", "sequence_reach", "aggregate", "MetaGame"]


@dataclass(frozen=True)
class PSROConfig:
    """One ``parsimon games psro`` run (the paper: 100 iterations, SHOR-PSRO's train and eval solvers)."""

    game: str
    train_solver: str = "shor"
    eval_solver: str = "shor-eval"
    iterations: int = 100
    solver_scale: float = 1.0  # scales the inner iterations of shor/shor-eval/prd/rm (1 = the paper's)
    max_nodes: int = MAX_NODES

    def __post_init__(self) -> None:
        SOLVERS.check(self.train_solver)
        SOLVERS.check(self.eval_solver)
        positive_int("iterations", self.iterations)
        positive_int("max_nodes", self.max_nodes)
        if not self.solver_scale > 0:
            raise ConfigError(f"`solver_scale` must be > 0, got {self.solver_scale!r}")

    def solver_kwargs(self, name: str) -> dict:
        """The keyword arguments that apply ``solver_scale`` to the solver ``name``."""
        if self.solver_scale == 1.0:
            return {}
        if name in ("shor", "shor-eval"):
            return {"iteration_scale": self.solver_scale}
        if name in ("prd", "rm"):
            return {"iterations": max(1, int(100_000 * self.solver_scale))}
        return {}


def _levels(cg: CompiledGame):
    return [np.arange(int(cg.level_ptr[d]), int(cg.level_ptr[d + 1])) for d in range(cg.num_levels)]


class _Index:
    """Index arrays of a compiled game reused by every reach / payoff computation."""

    def __init__(self, cg: CompiledGame):
        self.cg = cg
        self.levels = _levels(cg)
        par = cg.parent
        pa = np.where(par >= 0, cg.actor[np.maximum(par, 0)], TERMINAL)
        self.parent_actor = pa
        # chance reach of every history
        cr = np.ones(cg.num_nodes)
        for lv in self.levels[1:]:
            cr[lv] = cr[par[lv]] * np.where(pa[lv] == CHANCE, cg.chance_prob[lv], 1.0)
        self.terminals = np.nonzero(cg.actor == TERMINAL)[0]
        self.chance_reach_z = cr[self.terminals]
        self.weighted_returns = cg.returns[self.terminals] * self.chance_reach_z[:, None]  # [Z, n]
        # per player: edges (child histories) whose parent is player p's decision, with (row in p's block, action)
        self.player_edges = []
        for p in range(cg.num_players):
            sl = cg.infosets_of(p)
            e = np.nonzero(pa == p)[0]
            rows = cg.infoset[par[e]] - sl.start
            self.player_edges.append((e, rows, cg.action[e]))
        # own-depth order of each player's infosets for own-reach computation
        self.own_order = []
        for p in range(cg.num_players):
            sl = cg.infosets_of(p)
            d = cg.own_depth[sl]
            self.own_order.append([np.nonzero(d == k)[0] for k in range(int(d.max()) + 1 if len(d) else 0)])


def sequence_reach(idx: _Index, player: int, rows: np.ndarray) -> np.ndarray:
    """``[K, Z]`` own sequence reach of ``player`` at every terminal for policies ``rows`` ``[K, I_p, A]``."""
    cg = idx.cg
    rows = np.asarray(rows, dtype=np.float64)
    K = rows.shape[0]
    e, r, a = idx.player_edges[player]
    edge = np.ones((K, cg.num_nodes))
    edge[:, e] = rows[:, r, a]
    reach = np.ones((K, cg.num_nodes))
    par = cg.parent
    for lv in idx.levels[1:]:
        reach[:, lv] = reach[:, par[lv]] * edge[:, lv]
    return reach[:, idx.terminals]


def own_infoset_reach(idx: _Index, player: int, rows: np.ndarray) -> np.ndarray:
    """``[K, I_p]`` own reach probability of each of ``player``'s infosets under each policy."""
    cg = idx.cg
    sl = cg.infosets_of(player)
    A = cg.num_actions
    K = rows.shape[0]
    out = np.ones((K, sl.stop - sl.start))
    ps = cg.parent_seq[sl]
    for group in idx.own_order[player][1:]:
        parent_rows = ps[group] // A - sl.start
        parent_act = ps[group] % A
        out[:, group] = out[:, parent_rows] * rows[:, parent_rows, parent_act]
    return out


def aggregate(idx: _Index, player: int, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Behaviour policy ``[I_p, A]`` realisation-equivalent to the ``weights``-mixture of ``rows``."""
    cg = idx.cg
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (rows.shape[0],) or not np.all(np.isfinite(w)) or (w < -1e-12).any() or w.sum() <= 0:
        raise ConfigError(f"mixture weights for player {player} must be {rows.shape[0]} non-negative numbers, got {w}")
    w = np.clip(w, 0.0, None) / w.sum()
    reach = own_infoset_reach(idx, player, rows) * w[:, None]  # [K, I_p]
    num = np.einsum("ki,kia->ia", reach, rows)
    den = reach.sum(axis=0)
    legal = cg.legal[cg.infosets_of(player)].astype(np.float64)
    uni = legal / legal.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den[:, None] > 1e-300, num / np.maximum(den, 1e-300)[:, None], uni)
    return out * legal


class MetaGame:
    """The exact payoff tensors of the populations, extended incrementally as they grow."""

    def __init__(self, idx: _Index):
        self.idx = idx
        self.n = idx.cg.num_players
        self.reach: list[np.ndarray] = [np.zeros((0, len(idx.terminals))) for _ in range(self.n)]
        self.tensors: list[np.ndarray] = [np.zeros((0,) * self.n) for _ in range(self.n)]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(r.shape[0] for r in self.reach)

    def add(self, new_reach: list[np.ndarray]) -> None:
        """Append policies (their terminal reach ``[k_new, Z]`` per player) and fill the new entries."""
        old = self.shape
        self.reach = [np.vstack([self.reach[p], new_reach[p]]) for p in range(self.n)]
        new = self.shape
        W = self.idx.weighted_returns  # [Z, n]
        tensors = []
        for i in range(self.n):
            t = np.zeros(new)
            t[tuple(slice(0, k) for k in old)] = self.tensors[i]
            tensors.append(t)
        # partition the new entries: index q new, indices < q old, indices > q anything
        for q in range(self.n):
            if new[q] == old[q]:
                continue
            sl = tuple(slice(0, old[p]) if p < q else (slice(old[q], new[q]) if p == q else slice(0, new[p]))
                       for p in range(self.n))
            factors = [self.reach[p][sl[p]] for p in range(self.n)]
            block = _contract(factors, W)  # [n, *block_shape]
            for i in range(self.n):
                tensors[i][sl] = block[i]
        self.tensors = tensors

    def as_list(self) -> list[np.ndarray]:
        return self.tensors


def _contract(factors: list[np.ndarray], W: np.ndarray) -> np.ndarray:
    """``out[i, k_0, ..., k_{n-1}] = sum_z W[z, i] prod_p factors[p][k_p, z]``.

    The two longest factors are contracted by a (batched) matrix product; the others (new blocks have an
    axis of length 1) enter an explicit outer product with ``W`` first.
    """
    n = len(factors)
    order = sorted(range(n), key=lambda p: factors[p].shape[0])
    small, (ia, ib) = order[:-2], order[-2:]
    acc = W.T  # [m, Z]
    for p in small:
        acc = acc[..., None, :] * factors[p]  # [m, s_0, ..., Z]
    fa, fb = factors[ia], factors[ib]
    out = (acc[..., None, :] * fa) @ fb.T  # [m, s_0, ..., ka, kb]
    axes_now = small + [ia, ib]  # tensor axis (after the leading player axis) -> population axis
    perm = [0] + [1 + axes_now.index(p) for p in range(n)]
    return out.transpose(perm)


@dataclass
class PSROResult(CurveResult):
    """A PSRO run: the exploitability curve of the eval meta-strategy profile, populations, meta-game."""

    game: str
    train_solver: str
    eval_solver: str
    exploitability: list[tuple[int, float]]
    meta_strategies: list[list[np.ndarray]] = field(repr=False)
    populations: list[np.ndarray] = field(repr=False)
    meta_game: list[np.ndarray] = field(repr=False)
    seconds: float = 0.0
    seconds_breakdown: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Curve, final meta-strategy, population sizes and timings (the arrays are left out)."""
        return {
            "game": self.game, "train_solver": self.train_solver, "eval_solver": self.eval_solver,
            "exploitability": [[int(k), float(v)] for k, v in self.exploitability],
            "final_meta_strategy": [s.tolist() for s in self.meta_strategies[-1]] if self.meta_strategies else [],
            "population_sizes": [int(p.shape[0]) for p in self.populations],
            "seconds": round(self.seconds, 3), "seconds_breakdown": {k: round(v, 3) for k, v in self.seconds_breakdown.items()},
            "final_exploitability": self.final_exploitability,
        }

    to_json = to_dict  # the earlier name


def _solver_name(s) -> str:
    return getattr(s, "name", type(s).__name__)


def mixture_policy(idx: _Index, populations: list[np.ndarray], strategies: list[np.ndarray]) -> np.ndarray:
    """Full ``[I, A]`` behaviour policy: each player's population mixed with its meta-strategy."""
    cg = idx.cg
    out = np.zeros((cg.num_infosets, cg.num_actions))
    for p in range(cg.num_players):
        out[cg.infosets_of(p)] = aggregate(idx, p, populations[p], strategies[p])
    return out


def psro(game: Any, train_solver: str | MetaSolver = "shor", eval_solver: str | MetaSolver = "shor-eval",
         iterations: int = 100, *, ties: str = "uniform", progress: bool = False,
         train_kwargs: dict | None = None, eval_kwargs: dict | None = None, callback=None,
         run=None) -> PSROResult:
    """Run ``iterations`` PSRO iterations on ``game`` (OpenSpiel string / game / CompiledGame / Tree; PSRO runs
    on numpy, so a torch Tree's compiled game is put on numpy). With ``run`` (a :class:`parsimon.run.Run`)
    each iteration's exploitability is logged to it and its progress bar is used.

    ``train_solver`` picks the mixtures best responses are trained against, ``eval_solver`` the profile
    whose exploitability is reported after every iteration (names from
    :data:`parsimon.games.meta_solvers.SOLVERS`, or objects with ``get_meta_strategy``). Returns a
    :class:`PSROResult` whose ``exploitability`` is a list of ``(iteration, value)`` for iterations
    ``1..iterations``.
    """
    positive_int("iterations", iterations)
    tree = as_tree(game, "numpy")
    cg = tree.cg
    idx = _Index(cg)
    n = cg.num_players
    train = get_solver(train_solver, **(train_kwargs or {}))
    evals = get_solver(eval_solver, **(eval_kwargs or {}))
    uni = cg.uniform_policy()
    pops = [uni[cg.infosets_of(p)][None].copy() for p in range(n)]
    mg = MetaGame(idx)
    mg.add([sequence_reach(idx, p, pops[p]) for p in range(n)])
    curve: list[tuple[int, float]] = []
    metas: list[list[np.ndarray]] = []
    times = {"train_solver": 0.0, "best_response": 0.0, "payoffs": 0.0, "eval_solver": 0.0, "exploitability": 0.0}
    t_start = time.perf_counter()
    # a stateless solver used for both roles sees the same meta-game at the eval of iteration k and the
    # train call of iteration k + 1: reuse that result instead of solving twice
    from .meta_solvers import _FnSolver

    reuse = (isinstance(train, _FnSolver) and isinstance(evals, _FnSolver) and train.name == evals.name
             and train.kwargs == evals.kwargs)
    cached_psi = None
    title = f"PSRO {cg.game_string} {_solver_name(train)}/{_solver_name(evals)}"
    bar = run.progress(title, iterations) if run is not None else TaskBar(title, iterations, enabled=progress)
    try:
        for k in range(1, iterations + 1):
            t0 = time.perf_counter()
            phi = cached_psi if (reuse and cached_psi is not None) else train.get_meta_strategy(mg.as_list())
            t1 = time.perf_counter()
            joint = mixture_policy(idx, pops, phi)
            new_rows = []
            for p in range(n):
                rows, _ = best_response(tree, joint, p, ties=ties)
                new_rows.append(np.asarray(rows)[None])
            t2 = time.perf_counter()
            pops = [np.concatenate([pops[p], new_rows[p]]) for p in range(n)]
            mg.add([sequence_reach(idx, p, new_rows[p]) for p in range(n)])
            t3 = time.perf_counter()
            psi = evals.get_meta_strategy(mg.as_list())
            cached_psi = psi
            t4 = time.perf_counter()
            expl = _exploitability(tree, mixture_policy(idx, pops, psi))
            t5 = time.perf_counter()
            times["train_solver"] += t1 - t0
            times["best_response"] += t2 - t1
            times["payoffs"] += t3 - t2
            times["eval_solver"] += t4 - t3
            times["exploitability"] += t5 - t4
            curve.append((k, float(expl)))
            metas.append(psi)
            if run is not None:
                run.log(k, exploitability=float(expl))
            if callback is not None:
                callback(k, float(expl))
            bar.advance(1)
            bar.update(description=f"PSRO it {k}: exploitability {expl:.3g}")
    finally:
        bar.close()
    return PSROResult(game=cg.game_string, train_solver=_solver_name(train), eval_solver=_solver_name(evals),
                      exploitability=curve, meta_strategies=metas, populations=pops, meta_game=mg.as_list(),
                      seconds=time.perf_counter() - t_start, seconds_breakdown=times)
