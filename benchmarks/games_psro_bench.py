"""PSRO benchmark: 100 iterations of SHOR-PSRO on 3-player Kuhn (target < 2 minutes), side by side with
the numpy inner loop (no C kernel); PRD with OpenSpiel's 100,000 inner steps on 3-player Kuhn, C kernel on the
merged meta-game vs the numpy loop (10 PSRO iterations), and PRD / RM for 100 iterations there; per-meta-solver
timings on 2-player Kuhn.

    python benchmarks/games_psro_bench.py [--quick] [--save]

Writes games_psro_bench[_quick].json and .png into a run folder (``--out``, default
runs/games-psro-bench-<UTC stamp>); ``--save`` also writes them to benchmarks/results/. One thread; this machine
is shared, so wall times are noisy (CPU seconds are reported beside them).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outputs import add_output_options, open_run, write_results  # noqa: E402

from parsimon.games import _orm_kernel  # noqa: E402
from parsimon.games.psro import psro  # noqa: E402


def _run(game, tr, ev, iters, **kw):
    c0, t0 = time.process_time(), time.perf_counter()
    res = psro(game, tr, ev, iters, **kw)
    return res, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="30 iterations for the numpy-loop comparison")
    add_output_options(ap, "games-psro-bench")
    args = ap.parse_args(argv)
    with open_run("games psro bench", args) as run:
        data, plot = measure(args)
        write_results(run, "games_psro_bench" + ("_quick" if args.quick else ""), data, plot, args.save)


def measure(args: argparse.Namespace):
    """The measurements (a JSON-ready dict) and a function drawing their plot into a path."""
    rows = {}
    res, wall, cpu = _run("kuhn_poker(players=3)", "shor", "shor-eval", 100)
    rows["kuhn3p_shor_100_kernel"] = {"wall_s": wall, "cpu_s": cpu, "breakdown": res.seconds_breakdown,
                                      "curve": res.exploitability, "final": res.final,
                                      "kernel": _orm_kernel.load() is not None}
    print(f"SHOR-PSRO Kuhn 3p, 100 its (C kernel): {wall:.1f} s wall, {cpu:.1f} s CPU, final {res.final:.3g}")
    n_np = 30 if args.quick else 100
    res_np, wall_np, cpu_np = _run("kuhn_poker(players=3)", "shor", "shor-eval", n_np,
                                   train_kwargs={"use_kernel": False}, eval_kwargs={"use_kernel": False})
    same = np.allclose([v for _, v in res_np.exploitability], [v for _, v in res.exploitability[:n_np]],
                       rtol=1e-6, atol=1e-12)
    rows[f"kuhn3p_shor_{n_np}_numpy_loop"] = {"wall_s": wall_np, "cpu_s": cpu_np,
                                             "breakdown": res_np.seconds_breakdown, "same_curve_as_kernel": bool(same)}
    k_cpu = sum(v for k, v in res.seconds_breakdown.items()) if n_np == 100 else None
    print(f"  numpy loop, {n_np} its: {wall_np:.1f} s wall, {cpu_np:.1f} s CPU (curves agree: {same})")
    prd = {}
    for kernel in (True, False):
        r, w, c = _run("kuhn_poker(players=3)", "prd", "prd", 10, train_kwargs={"use_kernel": kernel},
                       eval_kwargs={"use_kernel": kernel})
        prd["kernel" if kernel else "numpy_loop"] = {"wall_s": w, "cpu_s": c, "curve": r.exploitability}
        print(f"PRD (1e5 steps) Kuhn 3p, 10 its, {'C kernel' if kernel else 'numpy loop'}: {w:.1f} s wall, {c:.1f} s CPU")
    prd["same_curve"] = bool(np.allclose([v for _, v in prd["kernel"]["curve"]],
                                         [v for _, v in prd["numpy_loop"]["curve"]], rtol=1e-6, atol=1e-12))
    prd["cpu_speedup"] = prd["numpy_loop"]["cpu_s"] / prd["kernel"]["cpu_s"]
    print(f"  speed-up {prd['cpu_speedup']:.0f}x (CPU s), curves agree: {prd['same_curve']}")
    for tr in ("prd", "rm"):
        r, w, c = _run("kuhn_poker(players=3)", tr, tr, 100)
        rows[f"kuhn3p_{tr}_100_kernel"] = {"wall_s": w, "cpu_s": c, "final": r.final, "curve": r.exploitability}
        print(f"{tr.upper()} Kuhn 3p, 100 its (C kernel): {w:.1f} s wall, {c:.1f} s CPU, final {r.final:.3g}")
    per_solver = {}
    for tr, ev, n, kw in [("uniform", "uniform", 100, {}), ("nash", "nash", 100, {}),
                          ("shor", "shor-eval", 100, {}), ("rm", "rm", 100, {}),
                          ("prd", "prd", 100, {}), ("alpharank", "alpharank", 20, {})]:
        r, w, c = _run("kuhn_poker", tr, ev, n, train_kwargs=kw if tr in ("rm", "prd") else {},
                       eval_kwargs=kw if ev in ("rm", "prd") else {})
        per_solver[f"{tr}/{ev}"] = {"iterations": n, "solver_kwargs": kw, "wall_s": w, "cpu_s": c,
                                    "final": r.final, "curve": r.exploitability}
        print(f"  Kuhn 2p {tr}/{ev} {n} its: {w:.1f} s, final {r.final:.3g}")
    data = {"machine": platform.platform(), "python": platform.python_version(), "threads": 1,
            "note": "Shared 2-core machine under load from other jobs; compare CPU seconds. A version of PSRO on "
                    "OpenSpiel policy objects took about 24 minutes for the same Kuhn 3p run (issue text).",
            "kuhn3p": rows, "kuhn3p_prd_kernel_vs_numpy": prd, "kuhn2p_solvers": per_solver, "numpy_loop_iterations": n_np, "kernel_cpu": k_cpu}
    return data, lambda path: _plot(path, res, wall, rows, per_solver)


def _plot(path, res, wall, rows, per_solver) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    c = res.exploitability
    axes[0].plot([p[0] for p in c], [p[1] for p in c], label=f"SHOR-PSRO ({wall:.0f} s wall)")
    for tr in ("prd", "rm"):
        d = rows[f"kuhn3p_{tr}_100_kernel"]
        axes[0].plot([p[0] for p in d["curve"]], [p[1] for p in d["curve"]], label=f"{tr} ({d['wall_s']:.0f} s wall)")
    axes[0].set_yscale("log")
    axes[0].set_title("Kuhn 3p, 100 PSRO iterations", fontsize=9)
    axes[0].set_xlabel("PSRO iteration")
    axes[0].set_ylabel("exploitability")
    axes[0].legend(fontsize=7)
    for name, d in per_solver.items():
        axes[1].plot([p[0] for p in d["curve"]], [max(p[1], 1e-17) for p in d["curve"]], label=name)
    axes[1].set_yscale("log")
    axes[1].set_title("Kuhn 2p, meta-solvers", fontsize=9)
    axes[1].set_xlabel("PSRO iteration")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
