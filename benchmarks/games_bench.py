"""CFR+ time per iteration: our compiled engine vs OpenSpiel C++ vs OpenSpiel Python, one thread, one run.

    python benchmarks/games_bench.py                 # CPU: numpy engine (+ torch CPU) vs OpenSpiel C++/Python
    python benchmarks/games_bench.py --gpu           # adds the torch engine on CUDA for every game
    python benchmarks/games_bench.py --quick         # small games only (seconds)
    python benchmarks/games_bench.py --table [--iterations 1000] [--large]
        # exploitability after N iterations (curves) of CFR+, DCFR, PCFR+, PDCFR+, VAD-CFR, AOD-CFR on the
        # paper's training and test games -> games_cfr_table.json / .png (--large adds 3-player Leduc)

Writes games_bench[_gpu][_quick].json and .png (``games_cfr_table`` for --table) into a run folder (``--out``,
default runs/games-bench-<UTC stamp>); ``--save`` also writes them to benchmarks/results/ (a --quick run has
its own ``_quick`` name there, so it never replaces the full run's file). Each engine does one warm-up iteration, then
``k`` timed iterations; we report the median seconds per iteration. After the timed iterations the
average policies of our engine and OpenSpiel C++ (same number of iterations) are compared
(``max_policy_diff``) so that the timings are of the same computation. Compile time and memory of the
compiled arrays are reported too. Times on a loaded shared machine are noisy: compare the ratios
measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outputs import add_output_options, open_run, write_results  # noqa: E402

GAMES = [
    # (name, OpenSpiel string, our iterations, C++ iterations, Python iterations)
    ("Kuhn 2p", "kuhn_poker", 50, 50, 20),
    ("Leduc 2p", "leduc_poker", 30, 10, 3),
    ("Liar's Dice 5", "liars_dice(dice_sides=5)", 20, 5, 1),
    ("Liar's Dice 6", "liars_dice(dice_sides=6)", 10, 3, 1),
    ("Leduc 3p", "leduc_poker(players=3)", 5, 2, 1),
]
QUICK = {"Kuhn 2p", "Leduc 2p", "Liar's Dice 5"}


def _median_time(step, k: int) -> float:
    step()  # warm-up (and first-iteration allocations)
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _cpp_table(cg, solver) -> np.ndarray:
    ki = cg.key_index()
    out = np.zeros((cg.num_infosets, cg.num_actions))
    for key, v in solver.tabular_average_policy().policy_table().items():
        for a, p in v:
            out[ki[key], a] = p
    return out


def bench_game(name, gstr, k_ours, k_cpp, k_py, *, python: bool, torch_cpu: bool, gpu: bool,
               device: str = "cuda") -> dict:
    import pyspiel
    from open_spiel.python.algorithms import cfr as os_cfr

    from parsimon.games.cfr import CFRDriver
    from parsimon.games.engine import compile_game

    row: dict = {"game": name, "game_string": gstr}
    cg = compile_game(gstr, cache=False)
    row.update({"histories": cg.num_nodes, "infosets": cg.num_infosets, "compile_s": cg.compile_seconds,
                "compiled_mb": cg.nbytes / 2**20})
    ours = CFRDriver(cg, "cfr+")
    row["ours_numpy_s"] = _median_time(ours.iteration, k_ours)
    done = 1 + k_ours
    print(f"{name}: {cg.num_infosets} infosets, {cg.num_nodes} histories, compiled in {cg.compile_seconds:.2f} s; "
          f"numpy {row['ours_numpy_s'] * 1e3:.3f} ms/it", flush=True)

    cpp = pyspiel.CFRPlusSolver(cg.game)
    row["openspiel_cpp_s"] = _median_time(cpp.evaluate_and_update_policy, k_cpp)
    # bring both to the same iteration count and compare the average policies
    cpp_done = 1 + k_cpp
    while cpp_done < done:
        cpp.evaluate_and_update_policy()
        cpp_done += 1
    while done < cpp_done:
        ours.iteration()
        done += 1
    row["compared_at_iteration"] = done
    row["max_policy_diff_vs_cpp"] = float(np.abs(ours.average_policy() - _cpp_table(cg, cpp)).max())
    row["speedup_vs_cpp"] = row["openspiel_cpp_s"] / row["ours_numpy_s"]
    print(f"  OpenSpiel C++ {row['openspiel_cpp_s'] * 1e3:.3f} ms/it  -> {row['speedup_vs_cpp']:.1f}x; "
          f"policy diff {row['max_policy_diff_vs_cpp']:.1e} at iteration {done}", flush=True)

    if python:
        t0 = time.perf_counter()
        py = os_cfr.CFRPlusSolver(cg.game)
        row["openspiel_python_init_s"] = time.perf_counter() - t0
        ts = []
        for _ in range(k_py):
            t0 = time.perf_counter()
            py.evaluate_and_update_policy()
            ts.append(time.perf_counter() - t0)
        row["openspiel_python_s"] = statistics.median(ts)
        row["python_iterations_timed"] = k_py
        row["speedup_vs_python"] = row["openspiel_python_s"] / row["ours_numpy_s"]
        print(f"  OpenSpiel Python {row['openspiel_python_s'] * 1e3:.1f} ms/it -> {row['speedup_vs_python']:.0f}x",
              flush=True)
    if torch_cpu:
        import torch

        torch.set_num_threads(1)
        drv = CFRDriver(cg, "cfr+", backend="torch", device="cpu")
        row["ours_torch_cpu_s"] = _median_time(drv.iteration, max(3, k_ours // 2))
        print(f"  torch CPU {row['ours_torch_cpu_s'] * 1e3:.3f} ms/it", flush=True)
    if gpu:
        import torch

        drv = CFRDriver(cg, "cfr+", backend="torch", device=device)
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

        def step():
            drv.iteration()
            sync()

        row["ours_torch_cuda_s"] = _median_time(step, max(5, k_ours))
        row["gpu_speedup_vs_cpp"] = row["openspiel_cpp_s"] / row["ours_torch_cuda_s"]
        drv2 = CFRDriver(cg, "cfr+")
        drv2.run(6)
        drv3 = CFRDriver(cg, "cfr+", backend="torch", device=device)
        drv3.run(6)
        row["cuda_vs_numpy_policy_diff"] = float(np.abs(drv2.average_policy() - drv3.average_policy()).max())
        print(f"  torch {device} {row['ours_torch_cuda_s'] * 1e3:.3f} ms/it -> {row['gpu_speedup_vs_cpp']:.1f}x "
              f"vs C++ (policy diff vs numpy {row['cuda_vs_numpy_policy_diff']:.1e})", flush=True)
    return row


def plot(rows: list[dict], path: Path, gpu: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("ours_numpy_s", "ours (numpy)"), ("openspiel_cpp_s", "OpenSpiel C++"),
            ("openspiel_python_s", "OpenSpiel Python")]
    if any("ours_torch_cpu_s" in r for r in rows):
        cols.insert(1, ("ours_torch_cpu_s", "ours (torch CPU)"))
    if gpu:
        cols.insert(1, ("ours_torch_cuda_s", "ours (torch CUDA)"))
    fig, ax = plt.subplots(figsize=(8, 4))
    w = 0.8 / len(cols)
    x = np.arange(len(rows))
    for j, (key, label) in enumerate(cols):
        ys = [r.get(key, np.nan) for r in rows]
        ax.bar(x + j * w, ys, w, label=label)
    ax.set_xticks(x + w * (len(cols) - 1) / 2)
    ax.set_xticklabels([r["game"] for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("seconds per CFR+ iteration (median)")
    ax.set_title("CFR+ per-iteration time, one thread")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TABLE_GAMES = [
    # (label, OpenSpiel string, set)
    ("Kuhn 3p", "kuhn_poker(players=3)", "train"),
    ("Leduc 2p", "leduc_poker", "train"),
    ("Goofspiel 4", "goofspiel(num_cards=4,imp_info=True,points_order=descending)", "train"),
    ("Liar's Dice 5", "liars_dice(dice_sides=5)", "train"),
    ("Kuhn 4p", "kuhn_poker(players=4)", "test"),
    ("Goofspiel 5", "goofspiel(num_cards=5,imp_info=True,points_order=descending)", "test"),
    ("Liar's Dice 6", "liars_dice(dice_sides=6)", "test"),
    ("Leduc 3p", "leduc_poker(players=3)", "test"),
]
TABLE_ALGOS = ["cfr+", "dcfr", "pcfr+", "pdcfr+", "vad-cfr", "aod-cfr"]


def table(iterations: int, large: bool, run, save: bool, backend: str = "numpy", only_games=None, algos=None,
          name: str = "games_cfr_table", eval_points: int = 100) -> None:
    from parsimon.games import compile_game, solve

    rows = []
    for label, gstr, split in TABLE_GAMES:
        if only_games and label not in only_games:
            continue
        if label == "Leduc 3p" and not large:
            continue
        cg = compile_game(gstr)
        for algo in algos or TABLE_ALGOS:
            t0 = time.perf_counter()
            res = solve(cg, algo, iterations, eval_every=max(1, iterations // eval_points), backend=backend)
            rows.append({"game": label, "set": split, "algo": algo, "iterations": iterations,
                         "final": res.final_exploitability, "curve": res.exploitability,
                         "seconds_per_iteration": res.seconds_per_iteration,
                         "wall_s": time.perf_counter() - t0})
            print(f"{label:14s} {algo:8s} {res.final_exploitability:.4g}  "
                  f"({res.seconds_per_iteration * 1e3:.2f} ms/it)", flush=True)
    data = {"meta": {"iterations": iterations, "metric": "exploitability (NashConv / players) of the average policy",
                     "backend": backend}, "rows": rows}
    write_results(run, name, data, lambda path: plot_table(rows, path), save)


def plot_table(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["game"] for r in rows))
    cols = 4
    nr = (len(labels) + cols - 1) // cols
    fig, axes = plt.subplots(nr, cols, figsize=(4 * cols, 3.2 * nr), squeeze=False)
    for ax, lab in zip(axes.flat, labels, strict=False):
        for r in rows:
            if r["game"] == lab:
                xs = [p[0] for p in r["curve"]]
                ax.plot(xs, [max(p[1], 1e-17) for p in r["curve"]], label=r["algo"])
        ax.set_yscale("log")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("iteration")
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    axes.flat[0].set_ylabel("exploitability")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="also time the torch engine on CUDA")
    ap.add_argument("--quick", action="store_true", help="small games only")
    ap.add_argument("--device", default="cuda", help="torch device for --gpu (cpu only to check the code path)")
    ap.add_argument("--no-python", action="store_true", help="skip OpenSpiel's Python solver")
    ap.add_argument("--no-torch-cpu", action="store_true", help="skip the torch CPU backend")
    ap.add_argument("--table", action="store_true", help="exploitability table/curves instead of timings")
    ap.add_argument("--iterations", type=int, default=1000, help="iterations for --table")
    ap.add_argument("--large", action="store_true", help="--table: include 3-player Leduc")
    ap.add_argument("--games", default="", help="--table: comma-separated labels, e.g. 'Leduc 3p'")
    ap.add_argument("--algos", default="", help="--table: comma-separated algorithms")
    ap.add_argument("--name", default="games_cfr_table", help="--table: output file stem")
    ap.add_argument("--eval-points", type=int, default=100, help="--table: evaluations per curve")
    add_output_options(ap, "games-bench")
    args = ap.parse_args(argv)
    if args.gpu and args.device.startswith("cuda") and not args.table:
        import torch

        if not torch.cuda.is_available():
            print("--gpu given but torch sees no CUDA device", file=sys.stderr)
            return 2
    with open_run("games bench", args) as run:
        if args.table:
            table(args.iterations, args.large, run, args.save, "torch" if args.gpu else "numpy",
                  [g.strip() for g in args.games.split(",") if g.strip()] or None,
                  [a.strip() for a in args.algos.split(",") if a.strip()] or None, args.name, args.eval_points)
        else:
            timings(args, run)
    return 0


def timings(args: argparse.Namespace, run) -> None:
    rows = []
    for name, gstr, k1, k2, k3 in GAMES:
        if args.quick and name not in QUICK:
            continue
        rows.append(bench_game(name, gstr, k1, k2, k3, python=not args.no_python,
                               torch_cpu=not args.no_torch_cpu, gpu=args.gpu, device=args.device))
    stem = ("games_bench_gpu" if args.gpu else "games_bench") + ("_quick" if args.quick else "")
    meta = {"algorithm": "cfr+", "threads": 1, "python": sys.version.split()[0], "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0], "note": "median seconds per iteration; side-by-side in one run"}
    if args.gpu:
        import torch

        meta["gpu"] = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    write_results(run, stem, {"meta": meta, "rows": rows}, lambda path: plot(rows, path, args.gpu), args.save)


if __name__ == "__main__":
    raise SystemExit(main())
