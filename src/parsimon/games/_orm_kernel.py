"""Optional C kernels for the iterative meta-solvers: SHOR-PSRO's hybrid solver loop, projected replicator
dynamics and regret matching (compiled with the system C compiler on first use).

The numpy loop in :func:`parsimon.games.meta_solvers.hybrid_orm` spends almost all its time in Python
overhead (about 25 small array operations per player and inner iteration, ~10^6 inner iterations for 100
PSRO iterations). This module holds the same loop in C; it is compiled once into
``$TMPDIR/parsimon-kernels-<uid>/`` and loaded with ``ctypes``. Without a compiler, or with
``PARSIMON_NO_CKERNEL=1``, :func:`load` returns None and the numpy loop runs. Tests check the two agree.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["load", "run", "run_replicator", "run_regret_matching"]

SOURCE = r"""
#include <math.h>
#include <string.h>

/* u = payoffs of player p's (distinct) strategies against the others' class masses. Tp is p's tensor with
   p's axis first, then the other players' axes in increasing order; it is contracted from the last axis. */
static void payoff_of(int n, const int *kk, const int *off, int p, const double *Tp, const double *mass,
                      double *buf1, double *buf2, double *u)
{
    long size = 1;
    for (int q = 0; q < n; ++q) size *= kk[q];
    const double *cur = Tp;
    double *dst = buf1;
    for (int q = n - 1; q >= 0; --q) {
        if (q == p) continue;
        int kq = kk[q];
        long outn = size / kq;
        const double *m = mass + off[q];
        for (long i = 0; i < outn; ++i) {
            const double *row = cur + i * kq;
            double s = 0.0;
            for (int j = 0; j < kq; ++j) s += row[j] * m[j];
            dst[i] = s;
        }
        size = outn;
        cur = dst;
        dst = (dst == buf1) ? buf2 : buf1;
    }
    memcpy(u, cur, sizeof(double) * kk[p]);
}

/* Projected replicator dynamics with simultaneous updates. Per-member probabilities sigma over distinct
   strategies with multiplicities mult; the Euclidean projection onto {x >= gamma, sum over members = 1}
   is found by Michelot's active-set iteration (same threshold as the sort-based rule). */
void replicator(int n, const int *kk, const int *off, const long *toff, const double *T, const double *mult,
                const double *total, long iterations, double dt, double gamma,
                double *sigma, double *mass, double *avg, double *U, double *buf1, double *buf2,
                double *z, int *act)
{
    for (long it = 0; it < iterations; ++it) {
        for (int p = 0; p < n; ++p) payoff_of(n, kk, off, p, T + toff[p], mass, buf1, buf2, U + off[p]);
        for (int p = 0; p < n; ++p) {
            int k = kk[p];
            double *sg = sigma + off[p];
            const double *mp = mult + off[p], *u = U + off[p];
            double xu = 0.0;
            for (int i = 0; i < k; ++i) xu += mp[i] * sg[i] * u[i];
            for (int i = 0; i < k; ++i) { z[i] = sg[i] + dt * sg[i] * (u[i] - xu) - gamma; act[i] = 1; }
            double s = 1.0 - total[p] * gamma, theta = 0.0;
            int changed = 1;
            while (changed) {
                double sw = 0.0, sm = 0.0;
                for (int i = 0; i < k; ++i) if (act[i]) { sw += mp[i] * z[i]; sm += mp[i]; }
                theta = (sw - s) / sm;
                changed = 0;
                for (int i = 0; i < k; ++i) if (act[i] && z[i] - theta <= 0.0) { act[i] = 0; changed = 1; }
            }
            for (int i = 0; i < k; ++i) {
                double x = z[i] - theta;
                sg[i] = (x > 0.0 ? x : 0.0) + gamma;
                avg[off[p] + i] += sg[i];
            }
        }
        for (int p = 0; p < n; ++p)
            for (int i = 0; i < kk[p]; ++i) mass[off[p] + i] = sigma[off[p] + i] * mult[off[p] + i];
    }
}

/* Regret matching with simultaneous updates and gamma-uniform exploration over all members. */
void regret_match(int n, const int *kk, const int *off, const long *toff, const double *T, const double *mult,
                  const double *total, long iterations, double gamma,
                  double *sigma, double *mass, double *R, double *avg, double *U, double *buf1, double *buf2)
{
    for (long it = 0; it < iterations; ++it) {
        for (int p = 0; p < n; ++p) payoff_of(n, kk, off, p, T + toff[p], mass, buf1, buf2, U + off[p]);
        for (int p = 0; p < n; ++p) {
            int k = kk[p];
            double *sg = sigma + off[p], *r = R + off[p];
            const double *mp = mult + off[p], *u = U + off[p];
            double ev = 0.0, sm = 0.0;
            for (int i = 0; i < k; ++i) ev += mp[i] * sg[i] * u[i];
            for (int i = 0; i < k; ++i) { r[i] += u[i] - ev; if (r[i] > 0.0) sm += mp[i] * r[i]; }
            for (int i = 0; i < k; ++i) {
                sg[i] = sm > 0.0 ? (1.0 - gamma) * (r[i] > 0.0 ? r[i] : 0.0) / sm + gamma / total[p]
                                 : 1.0 / total[p];
                avg[off[p] + i] += sg[i];
            }
        }
        for (int p = 0; p < n; ++p)
            for (int i = 0; i < kk[p]; ++i) mass[off[p] + i] = sigma[off[p] + i] * mult[off[p] + i];
    }
}

/* Player p's tensor has p's axis first, then the other players' axes in increasing order.
   All per-player vectors are concatenated with offsets off[p]; tensors with offsets toff[p]. */
void hybrid_orm(int n, const int *kk, const int *off, const long *toff, const double *T,
                const double *mult, const double *total, long iterations,
                double blend, double temperature, double diversity, double momentum,
                int gain_norm, int return_avg,
                double *sigma, double *mass, double *R, double *avg, double *prev,
                double *buf1, double *buf2, double *u, double *c, double *g, double *e)
{
    double inv_t = 1.0 / temperature, a_orm = 1.0 - blend, a_soft = blend;
    double b1 = 1.0 + momentum, b0 = momentum;
    for (long it = 0; it < iterations; ++it) {
        for (int p = 0; p < n; ++p) {
            int k = kk[p];
            payoff_of(n, kk, off, p, T + toff[p], mass, buf1, buf2, u);
            const double *mp = mult + off[p];
            double *sg = sigma + off[p], *r = R + off[p], *pv = prev + off[p];
            double mu = 0.0, umax = -INFINITY;
            for (int i = 0; i < k; ++i) { mu += mp[i] * u[i]; if (u[i] > umax) umax = u[i]; }
            mu /= total[p];
            double gmax = 0.0;
            for (int i = 0; i < k; ++i) {
                c[i] = u[i] - mu;
                g[i] = b1 * c[i] - b0 * pv[i];
                if (diversity != 0.0) g[i] += diversity * (1.0 - sg[i]);
                double a = fabs(g[i]);
                if (a > gmax) gmax = a;
            }
            double rs = 0.0, es = 0.0;
            for (int i = 0; i < k; ++i) {
                double gi = (gain_norm && gmax > 1e-8) ? g[i] / gmax : g[i];
                double ri = r[i] + gi;
                r[i] = ri > 0.0 ? ri : 0.0;
                rs += mp[i] * r[i];
                e[i] = exp((u[i] - umax) * inv_t);
                es += mp[i] * e[i];
            }
            double tot = total[p];
            for (int i = 0; i < k; ++i) {
                double orm = rs > 1e-12 ? r[i] / rs : 1.0 / tot;
                double soft = es > 1e-12 ? e[i] / es : 1.0 / tot;
                double s = a_orm * orm + a_soft * soft;
                sg[i] = s;
                mass[off[p] + i] = s * mp[i];
                pv[i] = c[i];
                if (return_avg) avg[off[p] + i] += s;
            }
        }
    }
}
"""

_LIB = None
_TRIED = False


def _build() -> ctypes.CDLL | None:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    h = hashlib.sha1(SOURCE.encode()).hexdigest()[:16]
    d = Path(tempfile.gettempdir()) / f"parsimon-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(parents=True, exist_ok=True)
    lib = d / f"hybrid_orm_{h}.so"
    if not lib.exists():
        src = d / f"hybrid_orm_{h}_{os.getpid()}.c"
        tmp = d / f"hybrid_orm_{h}_{os.getpid()}.so"
        src.write_text(SOURCE)
        r = subprocess.run([cc, "-O3", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math", "-shared", "-fPIC", "-o", str(tmp), str(src), "-lm"],
                           capture_output=True, timeout=120)
        src.unlink(missing_ok=True)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, lib)
    dll = ctypes.CDLL(str(lib))
    fn = dll.hybrid_orm
    P = ctypes.c_void_p
    fn.argtypes = [ctypes.c_int, P, P, P, P, P, P, ctypes.c_long, ctypes.c_double, ctypes.c_double,
                   ctypes.c_double, ctypes.c_double, ctypes.c_int, ctypes.c_int] + [P] * 11
    fn.restype = None
    I, L, D = ctypes.c_int, ctypes.c_long, ctypes.c_double
    dll.replicator.argtypes = [I, P, P, P, P, P, P, L, D, D] + [P] * 8
    dll.replicator.restype = None
    dll.regret_match.argtypes = [I, P, P, P, P, P, P, L, D] + [P] * 7
    dll.regret_match.restype = None
    return dll


def load():
    """The compiled kernel, or None (no compiler, build failure, or ``PARSIMON_NO_CKERNEL=1``)."""
    global _LIB, _TRIED
    if os.environ.get("PARSIMON_NO_CKERNEL") == "1":
        return None
    if not _TRIED:
        _TRIED = True
        try:
            _LIB = _build()
        except (OSError, subprocess.SubprocessError):
            _LIB = None
    return _LIB


class _Packed:
    """The per-player tensors and vectors of a (merged) meta-game, flattened for the C functions."""

    def __init__(self, T: list[np.ndarray], mult: list[np.ndarray], total: list[float]):
        self.n = len(T)
        self.kk = np.array([len(m) for m in mult], dtype=np.int32)
        self.off = np.concatenate([[0], np.cumsum(self.kk)[:-1]]).astype(np.int32)
        sizes = [t.size for t in T]
        self.toff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.T = np.ascontiguousarray(np.concatenate([t.ravel() for t in T]), dtype=np.float64)
        self.mult = np.ascontiguousarray(np.concatenate(mult), dtype=np.float64)
        self.total = np.ascontiguousarray(total, dtype=np.float64)
        self.K = int(self.kk.sum())
        big = max(max(sizes) // int(self.kk.min()), 1)
        self.buf1, self.buf2 = np.zeros(big), np.zeros(big)
        # per-member start: uniform over all members of each player's population
        self.sigma = np.concatenate([np.full(k, 1.0 / total[p]) for p, k in enumerate(self.kk)])
        self.mass = self.sigma * self.mult

    def head(self) -> list:
        return [self.n, ptr(self.kk), ptr(self.off), ptr(self.toff), ptr(self.T), ptr(self.mult), ptr(self.total)]

    def split(self, a: np.ndarray) -> list[np.ndarray]:
        return [a[self.off[p]: self.off[p] + self.kk[p]].copy() for p in range(self.n)]


def ptr(a: np.ndarray) -> ctypes.c_void_p:
    return a.ctypes.data_as(ctypes.c_void_p)


def run_replicator(lib, T: list[np.ndarray], mult: list[np.ndarray], total: list[float], iterations: int, *,
                   dt: float, gamma: float) -> list[np.ndarray]:
    """Projected replicator dynamics in C; returns the summed iterates (start included) per distinct strategy."""
    pk = _Packed(T, mult, total)
    avg = pk.sigma.copy()
    U, z = np.zeros(pk.K), np.zeros(int(pk.kk.max()))
    act = np.zeros(int(pk.kk.max()), dtype=np.int32)
    lib.replicator(*pk.head(), int(iterations), float(dt), float(gamma), ptr(pk.sigma), ptr(pk.mass), ptr(avg),
                   ptr(U), ptr(pk.buf1), ptr(pk.buf2), ptr(z), ptr(act))
    return pk.split(avg)


def run_regret_matching(lib, T: list[np.ndarray], mult: list[np.ndarray], total: list[float], iterations: int, *,
                        gamma: float) -> list[np.ndarray]:
    """Regret matching in C (regrets start at 1e-6); returns the summed iterates per distinct strategy."""
    pk = _Packed(T, mult, total)
    avg = pk.sigma.copy()
    R, U = np.full(pk.K, 1e-6), np.zeros(pk.K)
    lib.regret_match(*pk.head(), int(iterations), float(gamma), ptr(pk.sigma), ptr(pk.mass), ptr(R), ptr(avg),
                     ptr(U), ptr(pk.buf1), ptr(pk.buf2))
    return pk.split(avg)


def run(lib, T: list[np.ndarray], mult: list[np.ndarray], total: list[float], iterations: int, *, blend: float,
        temperature: float, diversity: float, momentum: float, gain_normalization: bool,
        return_average: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the loop in C; returns (last sigma per member, summed sigma per member) for each player."""
    pk = _Packed(T, mult, total)
    R, avg, prev = np.zeros(pk.K), np.zeros(pk.K), np.zeros(pk.K)
    kmax = int(pk.kk.max())
    u, c, g, e = (np.zeros(kmax) for _ in range(4))
    lib.hybrid_orm(*pk.head(), int(iterations), float(blend), float(temperature), float(diversity), float(momentum),
                   int(gain_normalization), int(return_average), ptr(pk.sigma), ptr(pk.mass), ptr(R), ptr(avg),
                   ptr(prev), ptr(pk.buf1), ptr(pk.buf2), ptr(u), ptr(c), ptr(g), ptr(e))
    return pk.split(pk.sigma), pk.split(avg)
