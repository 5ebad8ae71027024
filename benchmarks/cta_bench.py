"""CTA benchmark: planner speed and exactness, evaluation throughput with and without governance.

Writes benchmarks/results/cta.json and cta.png. Run: `.venv/bin/python benchmarks/cta_bench.py`.
Timings are medians of repeats on a shared 2-core machine (noisy).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"


def _median_time(fn, repeats=5):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    os.environ.setdefault("PARSIMON_HOME", tempfile.mkdtemp(prefix="cta_bench_"))
    from parsimon.cta import evaluate
    from parsimon.cta.pandora import brute_force_value, closed_form_value, generate_tasks, optimal_plan
    from parsimon.cta.qa import QABench

    res: dict = {"planner": [], "exactness": {}, "throughput": {}}
    rng = np.random.default_rng(0)
    for k in (3, 6, 10, 20):
        pri = [{chr(65 + j): float(x) for j, x in enumerate(rng.dirichlet(np.ones(k)))} for _ in range(200)]
        t_alg = _median_time(lambda pri=pri: [optimal_plan(p, 0.7) for p in pri]) / len(pri)
        t_cf = _median_time(lambda pri=pri: [closed_form_value(p, 0.7) for p in pri]) / len(pri)
        row = {"k": k, "algorithm1_us": t_alg * 1e6, "closed_form_us": t_cf * 1e6}
        if k <= 6:
            sub = pri[:20] if k == 6 else pri
            t_bf = _median_time(lambda sub=sub: [brute_force_value(p, 0.7) for p in sub], repeats=1) / len(sub)
            row["brute_force_us"] = t_bf * 1e6
        res["planner"].append(row)
        print(row, flush=True)
    bad, n = 0, 0
    for k in (2, 3, 4, 5):
        for _ in range(300 if k < 5 else 50):
            p = {chr(65 + j): float(x) for j, x in enumerate(rng.dirichlet(np.full(k, 0.7)))}
            g = float(rng.random())
            v = optimal_plan(p, g)[0]
            n += 1
            bad += abs(v - brute_force_value(p, g)) > 1e-12 or abs(v - closed_form_value(p, g)[0]) > 1e-12
    res["exactness"] = {"instances": n, "disagreements": int(bad)}
    tasks = generate_tasks(300, seed=1)
    for label, kw in (("no governance", {"audit": False, "ledger": False}), ("audit + ledger", {})):
        t = _median_time(lambda kw=kw: evaluate("pandora", "oracle", tasks, prior="true", **kw), repeats=3)
        res["throughput"][f"pandora, {label}"] = len(tasks) / t
    t0 = time.perf_counter()
    bench = QABench(1000, 0)
    res["qa_bench_build_s"] = time.perf_counter() - t0
    qa = bench.tasks(500)
    t = _median_time(lambda: evaluate("qa", "cta-planner", qa, audit=False, ledger=False), repeats=3)
    res["throughput"]["qa, no governance"] = len(qa) / t
    res["python"] = sys.version.split()[0]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cta.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    ks = [r["k"] for r in res["planner"]]
    axes[0].plot(ks, [r["algorithm1_us"] for r in res["planner"]], "o-", label="Algorithm 1")
    axes[0].plot(ks, [r["closed_form_us"] for r in res["planner"]], "s-", label="closed form")
    bf = [(r["k"], r["brute_force_us"]) for r in res["planner"] if "brute_force_us" in r]
    axes[0].plot([a for a, _ in bf], [b for _, b in bf], "^-", label="brute force")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("boxes K")
    axes[0].set_ylabel("µs per plan (median)")
    axes[0].legend()
    names = list(res["throughput"])
    axes[1].barh(names, [res["throughput"][k] for k in names])
    axes[1].set_xlabel("episodes / s")
    fig.tight_layout()
    fig.savefig(OUT / "cta.png", dpi=100)


if __name__ == "__main__":
    main()
