"""Optional C kernel for SHOR-PSRO's hybrid solver loop (compiled with the system C compiler on first use).

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

__all__ = ["load", "run"]

SOURCE = r"""
#include <math.h>
#include <string.h>

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
            /* contract the others from the last axis */
            long size = 1;
            for (int q = 0; q < n; ++q) size *= kk[q];
            const double *cur = T + toff[p];
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
            if (n == 1) { for (int i = 0; i < k; ++i) u[i] = T[toff[p] + i]; }
            else memcpy(u, cur, sizeof(double) * k);
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


def run(lib, T: list[np.ndarray], mult: list[np.ndarray], total: list[float], iterations: int, *, blend: float,
        temperature: float, diversity: float, momentum: float, gain_normalization: bool,
        return_average: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the loop in C; returns (last sigma per member, summed sigma per member) for each player."""
    n = len(T)
    kk = np.array([len(m) for m in mult], dtype=np.int32)
    off = np.concatenate([[0], np.cumsum(kk)[:-1]]).astype(np.int32)
    sizes = [t.size for t in T]
    toff = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    Tc = np.ascontiguousarray(np.concatenate([t.ravel() for t in T]), dtype=np.float64)
    multc = np.ascontiguousarray(np.concatenate(mult), dtype=np.float64)
    totc = np.ascontiguousarray(total, dtype=np.float64)
    K = int(kk.sum())
    sigma = np.concatenate([np.full(k, 1.0 / total[p]) for p, k in enumerate(kk)])
    mass = sigma * multc
    R, avg, prev = np.zeros(K), np.zeros(K), np.zeros(K)
    big = max(max(sizes) // int(kk.min()), 1)
    buf1, buf2 = np.zeros(big), np.zeros(big)
    kmax = int(kk.max())
    u, c, g, e = (np.zeros(kmax) for _ in range(4))
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    lib.hybrid_orm(n, ptr(kk), ptr(off), ptr(toff), ptr(Tc), ptr(multc), ptr(totc), int(iterations),
                   float(blend), float(temperature), float(diversity), float(momentum), int(gain_normalization),
                   int(return_average), ptr(sigma), ptr(mass), ptr(R), ptr(avg), ptr(prev), ptr(buf1), ptr(buf2),
                   ptr(u), ptr(c), ptr(g), ptr(e))
    split = lambda a: [a[off[p]: off[p] + kk[p]].copy() for p in range(n)]  # noqa: E731
    return split(sigma), split(avg)
