"""FILEREADING results for the report (paper Tables 4-5, Fig. 5) and the full evaluation.

``filereading_part(ctx)`` returns ``{"tables", "figures", "claims", "not_reproduced"}`` for
:mod:`parsimon.cta.reproduce`. Quick mode evaluates the first 40 test-split base tasks (160 episodes, every
ρ); ``ctx.full`` the whole 300-task test split (1,200 episodes). Every number comes from running the
environment: policies write pandas code and the sandbox executes it (identical code on the same file is
executed once and its result reused — the ρ copies and the policies share executions). Beside each
measured reward the table gives the exact expected reward of the same policy under the true prior
(computed by forward evaluation over the 12 formats), so sampling noise is visible.

``python -m parsimon.cta.filereading.report --out benchmarks/results [--n-base 300]`` writes
``cta_filereading_results.json`` and ``cta_filereading_pareto.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PAPER_TABLE4", "PAPER_TABLE5", "expected_reward", "filereading_part", "run_evaluation"]

# Paper Table 4 (Qwen3-8B agents, reward per ρ = 0.5 / 1 / 2 / 4 and average) and Table 5 (CTA-RL by prior).
PAPER_TABLE4 = {
    "PROMPTED": (None, None, None, None, 0.229),
    "CTA-PROMPTED": (None, None, None, None, 0.240),
    "RL": (0.359, 0.303, 0.227, 0.148, 0.259),
    "CTA-RL": (0.382, 0.315, 0.230, 0.147, 0.268),
}
PAPER_TABLE5 = {"estimated": (0.67, 0.269), "noisy": (0.52, 0.251), "uniform": (0.46, 0.251),
                "adversarial": (0.33, 0.203)}

# (label, policy, prior source) rows of the main table.
MAIN_ROWS = [("oracle (true prior)", "oracle", None), ("CTA planner (estimated prior)", "cta-planner", "estimated"),
             ("planner, uniform prior", "uniform-prior", None), ("code-first (estimated prior)", "code-first", "estimated"),
             ("test-then-code", "test-then-code", None)]
PRIOR_ROWS = ["true", "estimated", "noisy", "uniform", "adversarial"]
QUICK_N_BASE = 40  # test-split tasks in quick mode (x 4 ρ episodes per policy / prior run)


def expected_reward(policy: str, prior: dict, true: dict, d_unit: float, d_code: float) -> float:
    """Exact expected reward under the ``true`` prior of a scripted policy acting on ``prior``."""
    from parsimon.cta.filereading.planner import FormatPlanner
    from parsimon.cta.filereading.prior import CONFIGS, argmax_format, joint

    pj = joint(true)
    if policy in ("cta-planner", "oracle", "uniform-prior"):
        pl = FormatPlanner(prior, d_unit, d_code)
        return float(sum(pj[i] * pl.rollout(c)[1] for i, c in enumerate(CONFIGS)))
    if policy == "code-first":
        g = argmax_format(prior)
        return float(sum(pj[i] * (d_code if c == g else d_unit ** 3 * d_code ** 2) for i, c in enumerate(CONFIGS)))
    if policy == "test-then-code":
        return float(d_unit ** 3 * d_code)
    raise ValueError(f"no exact expectation for policy {policy!r}")


def _prior_for(policy: str, source: str | None, task: Any, rng: np.random.Generator) -> dict:
    from parsimon.cta.filereading.prior import true_prior, uniform_prior
    from parsimon.cta.registry import get_prior

    if policy == "oracle":
        return true_prior(task.features)
    if policy == "uniform-prior":
        return uniform_prior()
    if source is None:
        return uniform_prior()
    return get_prior("filereading", source, task, rng)


def run_evaluation(n_base: int | None = 300, *, seed: int = 0, progress: Any = None, rows: list | None = None,
                   prior_rows: list[str] | None = None) -> dict[str, Any]:
    """Run the main policies and the prior variants on the test split; return a JSON-able dict."""
    from parsimon.cta import evaluate
    from parsimon.cta.filereading import FileReadingEnv, get_dataset
    from parsimon.cta.filereading.prior import prior_accuracy, true_prior
    t0 = time.perf_counter()
    ds = get_dataset(seed)
    tasks = ds.tasks("test", n_base=n_base)
    est = ds.estimator()
    test_bases = ds.split("test")
    acc_est = est.accuracy([b.filename for b in test_bases], [b.fmt for b in test_bases])
    acc_true = prior_accuracy([true_prior(b.features) for b in test_bases], [b.fmt for b in test_bases])
    env = FileReadingEnv()
    runs = []
    combos = [(label, pol, pr) for label, pol, pr in (rows or MAIN_ROWS)]
    combos += [(f"CTA planner, prior={p}", "cta-planner", p) for p in (prior_rows if prior_rows is not None else PRIOR_ROWS)
               if not any(pol == "cta-planner" and pr == p for _, pol, pr in combos)]
    for label, pol, pr in combos:
        m = evaluate(env, pol, tasks, prior=pr, seed=seed, audit=False, ledger=False, progress=progress)
        # exact expectation of the same decisions (same priors: the same rng streams as evaluate's)
        exp: dict[float, list[float]] = {}
        priors_used = []
        for i, t in enumerate(tasks):
            p = _prior_for(pol, pr, t, np.random.default_rng([seed, i])) if pr is not None or pol in (
                "oracle", "uniform-prior") else None
            if p is not None:
                priors_used.append((p, t.fmt))
            exp.setdefault(t.rho, []).append(
                expected_reward(pol, p if p is not None else {}, true_prior(t.features), t.d_unit, t.d_code)
                if p is not None or pol == "test-then-code" else float("nan"))
        acc = prior_accuracy([p for p, _ in priors_used], [f for _, f in priors_used])["mean"] if priors_used else None
        per = {}
        for rho, d in m.per_rho.items():
            per[str(rho)] = {"reward": d["mean_reward"], "expected": float(np.mean(exp[rho])), "n": d["n"],
                             "U": d.get("U"), "C": d.get("C"), "accuracy": d.get("correct"),
                             "turns": d.get("turns"), "guess_and_go": d.get("guess_and_go"),
                             "match_rate": d.get("match_rate")}
        runs.append({"label": label, "policy": pol, "prior": pr, "prior_accuracy": acc,
                     "mean_reward": m.mean_reward, "expected_reward": float(np.mean([np.mean(v) for v in exp.values()])),
                     "match_rate": m.match_rate, "summary": m.summary, "policy_stats": m.policy_stats,
                     "per_rho": per, "seconds": m.seconds})
    return {"n_base": len({t.base_id for t in tasks}), "n_episodes": len(tasks), "seed": seed,
            "rhos": list(ds.rhos), "d_range": list(ds.d_range), "estimator_accuracy": acc_est,
            "true_prior_accuracy": acc_true, "runs": runs, "sandbox": dict(env.exec_stats),
            "seconds": time.perf_counter() - t0}


def pareto_plot(results: dict, path: str | Path) -> Path:
    """Reward against exploration cost (U + ρ·C, in unit-test equivalents) per ρ and policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rhos = results["rhos"]
    fig, axes = plt.subplots(1, len(rhos), figsize=(3.4 * len(rhos), 3.4), sharey=False)
    markers = "os^vDPX*hp"
    for ax, rho in zip(np.atleast_1d(axes), rhos, strict=True):
        for k, run in enumerate(r for r in results["runs"] if r["prior"] in (None, "estimated")):
            d = run["per_rho"][str(float(rho))]
            cost = d["U"] + rho * d["C"]
            ax.scatter(cost, d["reward"], marker=markers[k % len(markers)], s=40, label=run["label"])
        ax.set_title(f"ρ = {rho:g}")
        ax.set_xlabel("cost: U + ρ·C (unit-test equivalents)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean reward")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(x: Any) -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


def tables_from(results: dict) -> tuple[list, list]:
    """(tables, claims) for the report from :func:`run_evaluation`'s result."""
    from parsimon.report.section import Claim, Table

    rhos = [str(float(r)) for r in results["rhos"]]
    rows = []
    for run in results["runs"]:
        if run["prior"] not in (None, "estimated"):
            continue
        pr = run["per_rho"]
        rows.append([run["label"], *[_f(pr[r]["reward"]) for r in rhos], _f(run["mean_reward"]),
                     _f(run["expected_reward"]), _f(run["summary"].get("U")), _f(run["summary"].get("C")),
                     _f(run["summary"].get("correct")), f"{100 * run['summary'].get('guess_and_go', 0):.1f}"])
    for name, vals in PAPER_TABLE4.items():
        rows.append([f"paper: {name} (Qwen3-8B)", *[_f(v) for v in vals[:4]], _f(vals[4]), "—", "—", "—", "—", "—"])
    t4 = Table(f"FILEREADING reward per ρ, test split ({results['n_base']} tasks × {len(rhos)} ρ; paper Table 4)",
               ["policy", *[f"ρ={float(r):g}" for r in rhos], "avg", "expected avg", "U", "C", "acc", "guess&go %"],
               rows, note="measured = real episodes with sandboxed pandas code; expected = exact expectation of the "
                          "same policy under the true prior (forward evaluation over the 12 formats)")
    prow = []
    for run in results["runs"]:
        if run["policy"] != "cta-planner":
            continue
        src = run["prior"]
        paper = PAPER_TABLE5.get(src)
        prow.append([src, _f(run["prior_accuracy"]), _f(run["mean_reward"]), _f(run["expected_reward"]),
                     _f(paper[0]) if paper else "—", _f(paper[1]) if paper else "—"])
    t5 = Table("FILEREADING prior quality vs reward, CTA planner (paper Table 5: CTA-RL)",
               ["prior", "argmax accuracy", "reward", "expected", "paper acc", "paper reward (CTA-RL)"], prow)
    by = {(r["policy"], r["prior"]): r for r in results["runs"]}
    cta, cf, ttc = by[("cta-planner", "estimated")], by[("code-first", "estimated")], by[("test-then-code", None)]
    beats_exp = all(cta["per_rho"][r]["expected"] > max(cf["per_rho"][r]["expected"], ttc["per_rho"][r]["expected"])
                    for r in rhos)
    beats_meas = all(cta["per_rho"][r]["reward"] > max(cf["per_rho"][r]["reward"], ttc["per_rho"][r]["reward"])
                     for r in rhos)
    claims = [
        Claim("The calibrated planner beats both static policies (3×Test→Code, code-first) at every ρ",
              "CTA-RL ≥ RL / static patterns (Table 4, Fig. 5)",
              "expected: " + " / ".join(f"ρ={float(r):g}: {cta['per_rho'][r]['expected']:.3f} vs "
                                        f"{cf['per_rho'][r]['expected']:.3f}, {ttc['per_rho'][r]['expected']:.3f}"
                                        for r in rhos)
              + f"; measured: {'also at every ρ' if beats_meas else 'not at every ρ on this sample'}",
              beats_exp,
              note=(f"planner vs code-first vs test-then-code on {results['n_base']} test tasks; 'expected' is "
                    "the exact expectation under the true prior of the same decisions (no sampling noise); the "
                    "full 300-task split's measured rewards are in benchmarks/results/cta_filereading_results.json")),
        Claim("A Bayes-optimal planner with a ~0.67-accurate prior exceeds the paper's best agent",
              "CTA-RL 0.268 (avg over ρ)", f"{cta['mean_reward']:.3f} (prior accuracy {_f(cta['prior_accuracy'])})",
              cta["mean_reward"] > 0.268, note="our planner is exact; the paper's agents are Qwen3-8B"),
        Claim("Filename-based prior estimator accuracy (mean over the three attributes)", "0.67 (BERT-tiny)",
              f"{results['estimator_accuracy']['mean']:.3f} (true prior's own argmax: "
              f"{results['true_prior_accuracy']['mean']:.3f})",
              abs(results["estimator_accuracy"]["mean"] - 0.67) < 0.05,
              note="logistic regression on filename character n-grams, trained on the 1,400-task training split"),
    ]
    order = [by[("cta-planner", p)]["mean_reward"] for p in ("estimated", "noisy", "adversarial") if ("cta-planner", p) in by]
    if len(order) == 3:
        claims.append(Claim("Better prior → higher reward (Table 5 ordering estimated > noisy > adversarial)",
                            "0.269 > 0.251 > 0.203", " > ".join(f"{v:.3f}" for v in order),
                            order[0] > order[1] > order[2]))
    return [t4, t5], claims


def filereading_part(ctx: Any) -> dict[str, Any]:
    """Tables 4-5 analogues, the Pareto plot and claims; quick mode: :data:`QUICK_N_BASE` test tasks."""
    from parsimon.report.section import Figure

    n_base = 300 if ctx.full else QUICK_N_BASE
    results = run_evaluation(n_base, seed=ctx.seed, progress=getattr(ctx, "progress_impl", None))
    ctx.path("cta_filereading_results.json").write_text(json.dumps(results, indent=1, default=str))
    if hasattr(ctx, "log_metrics"):
        ctx.log_metrics({f"filereading/{r['policy']}/{r['prior']}": {"mean_reward": r["mean_reward"],
                                                                      "expected_reward": r["expected_reward"]}
                         for r in results["runs"]})
    tables, claims = tables_from(results)
    fig = Figure(pareto_plot(results, ctx.path("cta_filereading_pareto.png")),
                 "FILEREADING: mean reward against exploration cost (U + ρ·C) per ρ and policy (paper Fig. 5).")
    nr = ["FILEREADING LLM agents (Qwen3-8B PROMPTED / CTA-PROMPTED / RL / CTA-RL): not run; a 135M local model "
          "cannot write working pandas code reliably. Our rows are exact scripted planners and static baselines.",
          "BERT-tiny prior estimator: replaced by logistic regression on filename character n-grams (no hub "
          "download); the paper's released calib_pred_prior is usable with --prior released on its task file.",
          f"Quick mode uses {n_base} of the 300 test tasks; the full split's numbers are in "
          "benchmarks/results/cta_filereading_results.json."]
    return {"tables": tables, "figures": [fig], "claims": claims, "not_reproduced": nr}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="FILEREADING evaluation on the test split (JSON + Pareto plot)")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--n-base", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from rich.progress import Progress

    with Progress() as prog:
        res = run_evaluation(a.n_base, seed=a.seed, progress=prog)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cta_filereading_results.json").write_text(json.dumps(res, indent=1, default=str))
    pareto_plot(res, out / "cta_filereading_pareto.png")
    for run in res["runs"]:
        print(f"{run['label']:40s} " + " ".join(f"{v['reward']:.3f}" for v in run["per_rho"].values())
              + f"  avg {run['mean_reward']:.3f}  expected {run['expected_reward']:.3f}")
    print("estimator accuracy", res["estimator_accuracy"], "sandbox", res["sandbox"], f"{res['seconds']:.0f}s")


if __name__ == "__main__":
    main()
