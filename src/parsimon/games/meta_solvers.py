"""Meta-strategy solvers for PSRO on n-player meta-games.

A meta-game is a list ``meta_games`` of ``n`` arrays (one per player), each of shape ``(K_0, ..., K_{n-1})``
(population sizes), ``meta_games[p][k_0, ..., k_{n-1}]`` = expected return of player ``p`` when every
player ``q`` plays its ``k_q``-th population policy. A solver maps a meta-game to one mixed strategy
(probability vector over the population) per player.

Solvers (all names accepted by :func:`get_solver`):

* ``uniform`` — uniform over each population;
* ``nash`` — a Nash equilibrium of a 2-player zero-sum meta-game by linear programming (scipy ``linprog``,
  maximin of player 0; the meta-game must be zero-sum: ``M_0 + M_1 == 0`` up to a tolerance);
* ``prd`` — projected replicator dynamics (Lanctot et al. 2017; OpenSpiel's defaults: 1e5 steps of size
  1e-3, exploration floor ``gamma / K``, returns the average of the iterates);
* ``rm`` — regret matching (OpenSpiel's scheme: simultaneous updates, returns the average iterate);
* ``alpharank`` — AlphaRank (Omidshafiei et al. 2019) single-population-per-player Markov chain over pure
  strategy profiles with a large ranking intensity ``alpha``; the stationary distribution is
  marginalised per player;
* ``shor`` / ``shor-eval`` — SHOR-PSRO's hybrid optimistic regret solver (spec §2.2–2.3, Listing 6), with
  the train solver's annealing schedule (``ShorTrainSolver``) and the fixed eval settings
  (``ShorEvalSolver``).

Every solver is an object with ``get_meta_strategy(meta_games) -> list[np.ndarray]``; stateful ones (the
SHOR train solver counts its calls for annealing) keep their state on the object.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from parsimon.errors import ConfigError
from parsimon.registry import Registry

from . import _orm_kernel

__all__ = [
    "SOLVERS", "get_solver", "payoff_vectors", "uniform", "nash_2p_zero_sum", "projected_replicator_dynamics",
    "regret_matching", "alpharank", "hybrid_orm", "ShorTrainSolver", "ShorEvalSolver", "MetaSolver",
]


def _check(meta_games) -> list[np.ndarray]:
    if not isinstance(meta_games, (list, tuple)) or not meta_games:
        raise ConfigError("meta_games must be a non-empty list with one payoff array per player")
    mg = [np.asarray(m, dtype=np.float64) for m in meta_games]
    n = len(mg)
    for p, m in enumerate(mg):
        if m.ndim != n or m.shape != mg[0].shape:
            raise ConfigError(
                f"meta_games[{p}] must have {n} axes and the shape of meta_games[0] {mg[0].shape}, got {m.shape}"
            )
    if any(k == 0 for k in mg[0].shape):
        raise ConfigError(f"empty population in meta-game of shape {mg[0].shape}")
    return mg


def payoff_vectors(meta_game: np.ndarray, strategies: list[np.ndarray], player: int) -> np.ndarray:
    """Expected payoff of each of ``player``'s pure strategies against the others' mixed ``strategies``."""
    out = meta_game
    # contract the last axes first so the remaining axis index of `player` is unchanged
    for q in range(meta_game.ndim - 1, -1, -1):
        if q == player:
            continue
        out = np.tensordot(out, strategies[q], axes=([q], [0]))
    return out


# ---------------------------------------------------------------------------------------------- basics
def uniform(meta_games) -> list[np.ndarray]:
    mg = _check(meta_games)
    return [np.full(k, 1.0 / k) for k in mg[0].shape]


def nash_2p_zero_sum(meta_games, *, tol: float = 1e-6) -> list[np.ndarray]:
    """Maximin strategies of both players of a 2-player zero-sum meta-game (scipy ``linprog``, HiGHS)."""
    from scipy.optimize import linprog

    mg = _check(meta_games)
    if len(mg) != 2:
        raise ConfigError(f"the 'nash' meta-solver needs a 2-player meta-game, got {len(mg)} players")
    scale = max(1.0, float(np.abs(mg[0]).max()))
    if np.abs(mg[0] + mg[1]).max() > tol * scale:
        raise ConfigError("the 'nash' meta-solver needs a zero-sum meta-game (meta_games[0] + meta_games[1] == 0)")

    def maximin(A: np.ndarray) -> np.ndarray:  # row player maximises min_j x^T A[:, j]
        m, n = A.shape
        c = np.zeros(m + 1)
        c[-1] = -1.0  # maximise v
        A_ub = np.hstack([-A.T, np.ones((n, 1))])  # v - x^T A_j <= 0
        A_eq = np.zeros((1, m + 1))
        A_eq[0, :m] = 1.0
        res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n), A_eq=A_eq, b_eq=[1.0],
                      bounds=[(0, None)] * m + [(None, None)], method="highs")
        if res.status != 0:  # pragma: no cover - a finite matrix game always has a solution
            raise ConfigError(f"Nash LP failed: {res.message}")
        x = np.clip(res.x[:m], 0.0, None)
        return x / x.sum()

    return [maximin(mg[0]), maximin(mg[1].T)]


def projected_replicator_dynamics(meta_games, *, iterations: int = 100_000, dt: float = 1e-3,
                                  gamma: float = 1e-6, use_kernel: bool = True) -> list[np.ndarray]:
    """Projected replicator dynamics (Lanctot et al. 2017) with OpenSpiel's defaults and conventions:
    simultaneous updates ``x += dt * x * (u - x.u)``, Euclidean projection onto ``{x >= gamma, sum x = 1}``,
    the average of all iterates (the uniform start included) is returned.

    ``use_kernel``: run in the compiled C kernel when a C compiler is available, on the meta-game with duplicate
    strategies merged (they start equal and get equal updates; the projection is weighted by multiplicity, so
    the dynamics are unchanged). Otherwise the numpy loop below; the two agree (tested)."""
    mg = _check(meta_games)
    n = len(mg)
    lib = _orm_kernel.load() if use_kernel else None
    if lib is not None:
        classes, mult, T, total = _merged(mg)
        return _expand(_orm_kernel.run_replicator(lib, T, mult, total, int(iterations), dt=dt, gamma=gamma), classes)
    strat = [np.full(k, 1.0 / k) for k in mg[0].shape]
    total = [s.copy() for s in strat]
    for _ in range(int(iterations)):
        new = []
        for p in range(n):
            u = payoff_vectors(mg[p], strat, p)
            x = strat[p] + dt * strat[p] * (u - strat[p] @ u)
            new.append(_project_floor(x, gamma))
        strat = new
        for p in range(n):
            total[p] += strat[p]
    return [t / t.sum() for t in total]


def _project_floor(y: np.ndarray, floor: float) -> np.ndarray:
    """Euclidean projection of ``y`` onto ``{x : x_i >= floor, sum x = 1}``."""
    k = len(y)
    z = y - floor
    s = 1.0 - k * floor
    u = np.sort(z)[::-1]
    css = np.cumsum(u) - s
    ind = np.arange(1, k + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    theta = css[rho] / (rho + 1)
    return np.maximum(z - theta, 0.0) + floor


def regret_matching(meta_games, *, iterations: int = 100_000, gamma: float = 1e-6,
                    use_kernel: bool = True) -> list[np.ndarray]:
    """Regret matching with OpenSpiel's conventions: regrets start at ``1e-6``, simultaneous updates,
    exploration ``gamma`` (mixed with uniform), average of all iterates (start included).

    ``use_kernel``: as for :func:`projected_replicator_dynamics` (C loop on the merged meta-game)."""
    mg = _check(meta_games)
    n = len(mg)
    lib = _orm_kernel.load() if use_kernel else None
    if lib is not None:
        classes, mult, T, total = _merged(mg)
        return _expand(_orm_kernel.run_regret_matching(lib, T, mult, total, int(iterations), gamma=gamma), classes)
    strat = [np.full(k, 1.0 / k) for k in mg[0].shape]
    regrets = [np.full(k, 1e-6) for k in mg[0].shape]
    total = [s.copy() for s in strat]
    for _ in range(int(iterations)):
        new = []
        for p in range(n):
            u = payoff_vectors(mg[p], strat, p)
            regrets[p] = regrets[p] + u - u @ strat[p]
            pos = np.maximum(regrets[p], 0.0)
            k = len(pos)
            sm = pos.sum()
            new.append((1 - gamma) * pos / sm + gamma / k if sm > 0 else np.full(k, 1.0 / k))
        strat = new
        for p in range(n):
            total[p] += strat[p]
    return [t / t.sum() for t in total]


def alpharank(meta_games, *, alpha: float = 1e2, m: int = 50, use_inf_alpha: bool = False,
              inf_alpha_eps: float = 1e-8) -> list[np.ndarray]:
    """AlphaRank over pure strategy profiles (multi-population version), marginalised per player.

    The Markov chain moves from profile ``s`` to ``s'`` differing in player ``p``'s strategy with
    probability ``eta * rho``, ``eta = 1 / sum_p (K_p - 1)``, and fixation probability
    ``rho = (1 - exp(-alpha d)) / (1 - exp(-m alpha d))`` (``1/m`` when ``d = 0``), ``d = u_p(s') - u_p(s)``.
    With ``use_inf_alpha`` the limit ``alpha -> inf`` is taken (``rho`` = 1 for a strict improvement,
    ``1/m`` for a tie, 0 otherwise), mixed with ``inf_alpha_eps`` uniform noise to keep the chain ergodic.
    The stationary distribution ``pi`` solves ``pi P = pi``; each player's strategy is its marginal.
    """
    mg = _check(meta_games)
    n = len(mg)
    shape = mg[0].shape
    S = int(np.prod(shape))
    if S > 60_000:
        raise ConfigError(f"alpharank: {S} strategy profiles are too many (at most 60000) for the Markov chain")
    eta = 1.0 / max(1, sum(k - 1 for k in shape))
    profiles = np.array(np.unravel_index(np.arange(S), shape)).T  # [S, n]
    rows, cols, vals = [], [], []
    for p in range(n):
        u = mg[p].reshape(S)
        for alt in range(shape[p]):
            tgt_prof = profiles.copy()
            tgt_prof[:, p] = alt
            mask = profiles[:, p] != alt
            src = np.nonzero(mask)[0]
            tgt = np.ravel_multi_index(tgt_prof[mask].T, shape)
            d = u[tgt] - u[src]
            if use_inf_alpha:
                rho = np.where(d > 0, 1.0, np.where(d == 0, 1.0 / m, 0.0))
                rho = (1 - inf_alpha_eps) * rho + inf_alpha_eps / m
            else:
                rho = _fixation(alpha * d, m)
            rows.append(src)
            cols.append(tgt)
            vals.append(eta * rho)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    if S <= 2500:
        P = np.zeros((S, S))
        np.add.at(P, (r, c), v)
        P[np.arange(S), np.arange(S)] = 1.0 - P.sum(axis=1)
        pi = _stationary(P)
    else:
        pi = _stationary_sparse(r, c, v, S)
    pi_t = pi.reshape(shape)
    out = []
    for p in range(n):
        axes = tuple(q for q in range(n) if q != p)
        x = pi_t.sum(axis=axes) if axes else pi_t
        out.append(x / x.sum())
    return out


def _fixation(x: np.ndarray, m: int) -> np.ndarray:
    """``(1 - e^{-x}) / (1 - e^{-m x})`` evaluated stably, ``1/m`` at ``x = 0``."""
    out = np.empty_like(x)
    small = np.abs(x) < 1e-12
    out[small] = 1.0 / m
    y = x[~small]
    # for large negative y both numerator and denominator blow up: use the log form
    with np.errstate(over="ignore"):
        num = -np.expm1(-y)
        den = -np.expm1(-m * y)
        r = num / den
    bad = ~np.isfinite(r)
    if bad.any():  # y << 0: ratio ~ exp((m - 1) * y)
        r[bad] = np.exp((m - 1) * y[bad])
    out[~small] = r
    return out


def _stationary(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of a row-stochastic matrix (least squares on ``pi (P - I) = 0, sum pi = 1``)."""
    S = P.shape[0]
    A = np.vstack([(P - np.eye(S)).T, np.ones((1, S))])
    b = np.zeros(S + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _stationary_sparse(r: np.ndarray, c: np.ndarray, v: np.ndarray, S: int) -> np.ndarray:
    """Stationary distribution of a sparse chain given its off-diagonal entries (``pi (P - I) = 0``,
    one balance equation replaced by ``sum pi = 1``, sparse LU)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    off = sp.csr_matrix((v, (r, c)), shape=(S, S))
    out_rate = np.asarray(off.sum(axis=1)).ravel()
    Q = (off - sp.diags(out_rate)).T.tolil()  # columns: balance of each state
    Q[S - 1, :] = np.ones(S)
    b = np.zeros(S)
    b[-1] = 1.0
    pi = spsolve(Q.tocsc(), b)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


# ------------------------------------------------------------------------------------------ SHOR-PSRO
def _duplicate_classes(mg: list[np.ndarray], p: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ``p``'s strategies whose payoff slices are identical in every player's tensor.

    Returns ``(representatives, class_of)``: the first index of each class (in population order) and each
    strategy's class. Candidates are found by a random projection of the slices and confirmed by exact
    comparison, so only bit-identical slices are merged.
    """
    K = mg[0].shape[p]
    slabs = [np.moveaxis(m, p, 0).reshape(K, -1) for m in mg]
    w = np.random.default_rng(12345).random(slabs[0].shape[1])
    keys = sum(s @ w * (i + 1.0) for i, s in enumerate(slabs))
    reps: list[int] = []
    classes = np.empty(K, dtype=np.int64)
    by_key: dict[float, list[int]] = {}
    for j in range(K):
        found = -1
        for c in by_key.get(float(keys[j]), []):
            r = reps[c]
            if all(np.array_equal(s[j], s[r]) for s in slabs):
                found = c
                break
        if found < 0:
            found = len(reps)
            reps.append(j)
            by_key.setdefault(float(keys[j]), []).append(found)
        classes[j] = found
    return np.array(reps, dtype=np.int64), classes


def _merged(mg: list[np.ndarray], merge: bool = True):
    """(classes, multiplicities, tensors, population sizes) of a meta-game whose duplicate strategies (identical
    payoff slices for every player) are merged into one with a multiplicity. Player ``p``'s tensor has ``p``'s
    axis first and the others after in increasing order (the C kernels contract it from the back)."""
    n = len(mg)
    shape = mg[0].shape
    if merge:
        reps, classes = zip(*[_duplicate_classes(mg, p) for p in range(n)], strict=False)
    else:
        reps = tuple(np.arange(k) for k in shape)
        classes = reps
    mult = [np.bincount(classes[p], minlength=len(reps[p])).astype(np.float64) for p in range(n)]
    sub = np.ix_(*reps)
    T = [np.ascontiguousarray(np.moveaxis(mg[p][sub], p, 0)) for p in range(n)]
    return classes, mult, T, [float(k) for k in shape]


def _expand(summed: list[np.ndarray], classes) -> list[np.ndarray]:
    """Per-member normalised distributions from per-class summed iterates."""
    out = []
    for p, x in enumerate(summed):
        y = x[classes[p]]
        out.append(y / y.sum())
    return out


def hybrid_orm(meta_games, *, iterations: int, blend: float, temperature: float, diversity: float,
               momentum: float, gain_normalization: bool = True, return_average: bool = True,
               merge_duplicates: bool = True, use_kernel: bool = True) -> list[np.ndarray]:
    """SHOR-PSRO's hybrid optimistic regret-matching solver (spec §2.2, Listing 6), Gauss-Seidel over players.

    Per player ``p`` and internal iteration: ``u`` = payoffs of ``p``'s pure strategies against the current
    ``sigma_{-p}``; ``c = u - mean(u)``; ``g = (1 + beta) c - beta c_prev + div (1 - sigma_p)``, divided by
    ``max|g|`` (when > 1e-8); ``R = max(0, R + g)``; ``sigma_p = (1 - lambda) R / sum R + lambda softmax(u / T)``.

    ``merge_duplicates``: strategies with identical payoff slices (for every player) start equal and receive
    identical updates, so they are simulated once with a multiplicity (sums and means weighted by it) —
    the same dynamics as on the full meta-game, at the cost of the distinct strategies only.
    ``use_kernel``: run the loop in the compiled C kernel (:mod:`parsimon.games._orm_kernel`) when a C
    compiler is available; the numpy loop otherwise (same arithmetic, agreement is tested).
    """
    mg = _check(meta_games)
    n = len(mg)
    classes, mult, T, total = _merged(mg, merge_duplicates)
    others = [[q for q in range(n) if q != p] for p in range(n)]
    kk = [len(m) for m in mult]
    lib = _orm_kernel.load() if use_kernel else None
    if lib is not None:
        last, summed = _orm_kernel.run(lib, T, mult, total, int(iterations), blend=blend, temperature=temperature,
                                       diversity=diversity, momentum=momentum,
                                       gain_normalization=gain_normalization, return_average=return_average)
        return _expand(summed if return_average else last, classes)
    sigma = [np.full(k, 1.0 / total[p]) for p, k in enumerate(kk)]  # per-member probability
    mass = [sigma[p] * mult[p] for p in range(n)]  # probability of the class
    R = [np.zeros(k) for k in kk]
    avg = [np.zeros(k) for k in kk]
    prev = [np.zeros(k) for k in kk]
    inv_t = 1.0 / temperature
    a_orm, a_soft = 1.0 - blend, blend
    b1, b0 = 1.0 + momentum, momentum
    for _ in range(int(iterations)):
        for p in range(n):
            u = T[p]
            for q in reversed(others[p]):
                u = u.reshape(-1, kk[q]) @ mass[q]
            u = u.reshape(kk[p])
            m = mult[p]
            c = u - (m @ u) / total[p]
            g = b1 * c - b0 * prev[p]
            if diversity:
                g += diversity * (1.0 - sigma[p])
            if gain_normalization:
                mx = np.abs(g).max()
                if mx > 1e-8:
                    g /= mx
            r = R[p]
            r += g
            np.maximum(r, 0.0, out=r)
            rs = m @ r
            e = np.exp((u - u.max()) * inv_t)
            es = m @ e
            if rs > 1e-12:
                if es > 1e-12:
                    sg = r * (a_orm / rs) + e * (a_soft / es)
                else:
                    sg = r * (a_orm / rs) + a_soft / total[p]
            else:
                sg = (e * (a_soft / es) if es > 1e-12 else a_soft / total[p]) + a_orm / total[p]
                sg = np.broadcast_to(sg, (kk[p],)).copy()
            sigma[p] = sg
            mass[p] = sg * m
            prev[p] = c
            if return_average:
                avg[p] += sg
    out = []
    for p in range(n):
        x = (avg[p] if return_average else sigma[p])[classes[p]]
        out.append(x / x.sum())
    return out


def _anneal(initial: float, final: float, progress: float) -> float:
    v = initial * (1.0 - progress) + final * progress
    lo, hi = min(initial, final), max(initial, final)
    return float(min(max(v, lo), hi))


class MetaSolver(ABC):
    """Base class: ``get_meta_strategy(meta_games) -> list of per-player mixed strategies``."""

    name = "base"

    @abstractmethod
    def get_meta_strategy(self, meta_games) -> list[np.ndarray]:
        """Per-player mixed strategies over the current populations."""

    def __call__(self, meta_games) -> list[np.ndarray]:
        return self.get_meta_strategy(meta_games)

    def state(self) -> dict:
        return {}


class _FnSolver(MetaSolver):
    def __init__(self, name: str, fn: Any, kwargs: dict):
        self.name, self.fn, self.kwargs = name, fn, kwargs

    def get_meta_strategy(self, meta_games):
        return self.fn(meta_games, **self.kwargs)


class ShorTrainSolver(MetaSolver):
    """SHOR-PSRO train solver (Listing 6): annealed blend/temperature/diversity over 75 calls, time average.

    Internal iterations ``clip(1000 + 20 (n0 - 1), 1000, 5000)`` with ``n0`` = player 0's population size;
    ``iteration_scale`` multiplies them (1 = the paper; smaller values only for quick runs, and reported).
    """

    name = "shor"

    def __init__(self, *, anneal_calls: int = 75, iteration_scale: float = 1.0, use_kernel: bool = True):
        self.calls = 0
        self.anneal_calls = anneal_calls
        self.iteration_scale = iteration_scale
        self.use_kernel = use_kernel

    def params(self, n0: int) -> dict:
        progress = min(1.0, self.calls / self.anneal_calls)
        iters = int(np.clip(1000 + 20 * (n0 - 1), 1000, 5000))
        return dict(
            iterations=max(1, int(round(iters * self.iteration_scale))),
            blend=_anneal(0.3, 0.05, progress),
            temperature=_anneal(0.5, 0.01, progress),
            diversity=_anneal(0.05, 0.001, progress),
            momentum=0.5,
            gain_normalization=True,
            return_average=True,
        )

    def get_meta_strategy(self, meta_games):
        mg = _check(meta_games)
        self.calls += 1
        return hybrid_orm(mg, use_kernel=self.use_kernel, **self.params(mg[0].shape[0]))

    def state(self) -> dict:
        return {"calls": self.calls}


class ShorEvalSolver(MetaSolver):
    """SHOR-PSRO eval solver (Listing 6): fixed blend 0.01, temperature 0.001, no diversity, last iterate;
    ``clip(8000 + 50 (n0 - 1), 8000, 15000)`` internal iterations (times ``iteration_scale``)."""

    name = "shor-eval"

    def __init__(self, *, iteration_scale: float = 1.0, use_kernel: bool = True):
        self.iteration_scale = iteration_scale
        self.use_kernel = use_kernel

    def params(self, n0: int) -> dict:
        iters = int(np.clip(8000 + 50 * (n0 - 1), 8000, 15000))
        return dict(iterations=max(1, int(round(iters * self.iteration_scale))), blend=0.01,
                    temperature=0.001, diversity=0.0, momentum=0.2, gain_normalization=True,
                    return_average=False)

    def get_meta_strategy(self, meta_games):
        mg = _check(meta_games)
        return hybrid_orm(mg, use_kernel=self.use_kernel, **self.params(mg[0].shape[0]))


#: The meta-solvers by name: ``SOLVERS.get(name)(**kwargs)`` builds one (the SHOR train solver keeps state).
SOLVERS: Registry = Registry("meta-solver")
for _name, _fn, _describe in (
        ("uniform", uniform, "uniform over each population"),
        ("nash", nash_2p_zero_sum, "Nash equilibrium by LP (2-player zero-sum meta-games)"),
        ("prd", projected_replicator_dynamics, "projected replicator dynamics (OpenSpiel's settings)"),
        ("rm", regret_matching, "regret matching (OpenSpiel's settings)"),
        ("alpharank", alpharank, "AlphaRank, marginalised per player")):
    SOLVERS.register(_name, lambda _n=_name, _f=_fn, **kw: _FnSolver(_n, _f, dict(kw)), describe=_describe)
SOLVERS.register("shor", ShorTrainSolver, describe="SHOR-PSRO's train solver (annealed hybrid ORM)")
SOLVERS.register("shor-eval", ShorEvalSolver, describe="SHOR-PSRO's eval solver")


def get_solver(name: str | MetaSolver, **kwargs) -> MetaSolver:
    """A meta-solver by name (see :data:`SOLVERS`; case and ``_`` are ignored) or a ready object with
    ``get_meta_strategy``."""
    if not isinstance(name, str):
        if not hasattr(name, "get_meta_strategy"):
            raise ConfigError(f"a meta-solver must be one of {SOLVERS.names()} or have get_meta_strategy(), "
                              f"got {name!r}")
        return name
    return SOLVERS.get(name.lower().replace("_", "-"))(**kwargs)


def _is_finite_distribution(x: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(x)) and np.all(x >= -1e-12) and math.isclose(float(x.sum()), 1.0, abs_tol=1e-9))
