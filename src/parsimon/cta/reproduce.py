"""Report section for Calibrate-Then-Act (arXiv 2602.16699): Pandora (Table 2), QA (Table 3), FILEREADING
(Tables 4-5, via ``parsimon.cta.filereading`` when present)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from parsimon.report.section import Claim, Figure, ReproContext, Section, Table

__all__ = ["PAPER", "reproduce"]

PAPER = "Calibrate-Then-Act: Cost-Aware Exploration in LLM Agents (arXiv 2602.16699)"

# Paper Table 2 (Qwen3-8B, the released 100 Pandora tasks): (match %, reward)
PAPER_T2 = {"Oracle": (100.0, 0.649), "PROMPTED-NONTHINK": (11.0, 0.441), "PROMPTED": (23.0, 0.476),
            "CTA-PROMPTED-NONTHINK": (20.0, 0.436), "CTA-PROMPTED": (94.0, 0.625)}
# Paper Table 3 (PopQA, 1,000 questions): (retrieve %, accuracy, reward)
PAPER_T3 = {"NEVER RETRIEVE": (0.0, 0.226, 0.226), "ALWAYS RETRIEVE": (100.0, 0.578, 0.213),
            "PROMPTED-NONTHINK": (97.7, 0.619, 0.244), "PROMPTED": (61.4, 0.501, 0.283),
            "CTA-PROMPTED": (65.3, 0.512, 0.293)}

PANDORA_FILE_ENV = "PARSIMON_CTA_PANDORA_TASKS"  # path of the paper's released Pandora file, if the user has it


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _eval(ctx: ReproContext, env: str, policy: str, tasks: Any, prior: str | None, **kw: Any) -> Any:
    """One evaluation of the section: the section's seed, episodes shown on the report's progress display."""
    from parsimon.cta import evaluate

    return evaluate(env, policy, tasks, prior=prior, seed=ctx.seed, progress=ctx.progress_impl, **kw)


def _headline(m: Any) -> dict[str, Any]:
    return {"mean_reward": m.mean_reward, "match_rate": m.match_rate, "n": m.n_tasks}


def _pandora_row(label: str, m: Any, paper: str) -> list[Any]:
    return [label, _pct(m.match_rate), f"{m.mean_reward:.3f}", paper]


def _qa_row(label: str, m: Any, paper: str) -> list[Any]:
    return [label, _pct(m.summary["retrieved"]), f"{m.summary['correct']:.3f}", f"{m.mean_reward:.3f}",
            _pct(m.match_rate), paper]


def _pandora(ctx: ReproContext, section: Section, client: Any = None, why: str = "") -> dict[str, Any]:
    from parsimon.cta.pandora import generate_tasks, load_tasks, oracle_rollout

    released = os.environ.get(PANDORA_FILE_ENV)
    if released and Path(released).is_file():
        tasks = load_tasks(released)
        source = f"the paper's released file ({len(tasks)} tasks, {released})"
        labelled = [t for t in tasks if t.released_optimal]
        agree = sum(oracle_rollout(t.priors, t.gamma, t.prize) == t.released_optimal for t in labelled)
        section.claims.append(Claim(
            "Our Algorithm 1 (float order) reproduces the released optimal-policy labels", "100 / 100 labels",
            f"{agree} / {len(labelled)}", agree == len(labelled)))
    else:
        tasks = generate_tasks(100, seed=42 + ctx.seed, alpha=1.2)
        source = ("100 generated tasks (Dirichlet α = 1.2 as the authors' generator, γ ∈ {0, 0.1, …, 1}, seed "
                  f"{42 + ctx.seed}; with seed 42 these are the released file's tasks: same γ and prize boxes, "
                  "priors equal up to the release's float noise such as 0.8300000000000001); set "
                  f"${PANDORA_FILE_ENV} to the paper's released file to run on it")
    rows = []
    res: dict[str, Any] = {}
    for label, pol, prior, paper_key in (
        ("Oracle (Algorithm 1, true prior)", "oracle", "true", "Oracle"),
        ("CTA planner (Algorithm 1 on the given prior)", "cta-planner", "true", "CTA-PROMPTED"),
        ("Uniform-prior optimal (no prior)", "uniform-prior", None, "PROMPTED"),
        ("Guess-now (argmax prior at t=0)", "guess-now", "true", None),
    ):
        m = _eval(ctx, "pandora", pol, tasks, prior)
        res[pol] = m
        ctx.log_metrics({f"pandora/{pol}": _headline(m)})
        p = PAPER_T2.get(paper_key) if paper_key else None
        rows.append(_pandora_row(label, m, f"{paper_key}: {p[0]:.0f} / {p[1]:.3f}" if p else "–"))
    for src in ("noisy", "uniform", "adversarial"):
        m = _eval(ctx, "pandora", "cta-planner", tasks, src)
        ctx.log_metrics({f"pandora/cta-planner/{src}": _headline(m)})
        rows.append(_pandora_row(f"CTA planner, {src} prior", m, "–"))
    from parsimon.cta.agents.reasoner import PandoraReasonerClient

    for label, pol, prior in (("Programmatic reasoner via the PROMPTED prompt (no prior line)", "llm-prompted", None),
                              ("Programmatic reasoner via the CTA-PROMPTED prompt", "llm-cta", "true")):
        m = _eval(ctx, "pandora", pol, tasks, prior, policy_kwargs={"client": PandoraReasonerClient()})
        res[f"reasoner:{pol}"] = m
        rows.append(_pandora_row(label, m, "–"))
    llm_rows, llm_note = _llm_rows(ctx, "pandora", tasks, client, why, _pandora_row)
    rows.extend(llm_rows)
    section.tables.append(Table(
        "Pandora (paper Table 2): optimal-policy match % and mean reward",
        ["policy", "match %", "reward", "paper (Qwen3-8B) match % / reward"], rows,
        note=f"Tasks: {source}. Paper rows are Qwen3-8B agents; our programmatic planner stands in for the "
             f"'reasoning' an agent must do with the prior. The 'programmatic reasoner' rows run the LLM agent "
             f"end to end (same prompts, parser, environment) with a client that reads the prompt text and "
             f"solves it: it shows what information each prompt carries. {llm_note}"))
    alt = generate_tasks(100, seed=42 + ctx.seed, alpha=0.5)
    alt_rows = []
    for label, pol, prior in (("Oracle", "oracle", "true"), ("Uniform-prior optimal", "uniform-prior", None),
                              ("Guess-now", "guess-now", "true")):
        m = _eval(ctx, "pandora", pol, alt, prior)
        alt_rows.append([label, _pct(m.match_rate), f"{m.mean_reward:.3f}", f"{m.summary['verifies']:.2f}"])
    section.tables.append(Table(
        "Pandora with Dirichlet α = 0.5 (the paper's stated α; the released set fits α ≈ 1.2)",
        ["policy", "match %", "reward", "verifications / task"], alt_rows,
        note=f"100 generated tasks (seed {42 + ctx.seed}), same γ grid and rounding as above."))
    o, u = res["oracle"], res["uniform-prior"]
    section.claims.append(Claim(
        "Acting optimally on the prior (CTA) matches the oracle; without the prior the best policy matches "
        "only about a quarter of the oracle traces", "CTA-PROMPTED 94% vs PROMPTED 23% match",
        f"CTA planner {_pct(res['cta-planner'].match_rate)}% vs uniform-prior optimal {_pct(u.match_rate)}%",
        res["cta-planner"].match_rate == 1.0 and u.match_rate < 0.5,
        note="Programmatic planners (exact Algorithm 1), not LLMs; on the released file the spec measured 24% "
             "for the uniform-prior policy."))
    section.claims.append(Claim("Oracle mean reward on the Pandora evaluation set", "0.649",
                                f"{o.mean_reward:.3f}", abs(o.mean_reward - 0.649) < 0.005,
                                note=source))
    return res


def _start_llm(ctx: ReproContext) -> tuple[Any, str, Any]:
    """Start the local model; return (client, note, server) or (None, why not, None)."""
    try:
        import llama_cpp  # noqa: F401

        from parsimon.llm.server import model_path

        model_path()
    except Exception as exc:  # noqa: BLE001 - any failure to find the local model means: skip, and say so
        return None, f"the local model is unavailable ({exc})", None
    from parsimon.llm import ChatClient, LocalServer

    try:
        srv = LocalServer(port=0, log_path=ctx.path("cta_llm_server.log")).start()
    except Exception as exc:  # noqa: BLE001 - the server may fail to start on a loaded machine
        return None, f"the local model server did not start ({exc})", None
    return ChatClient(srv.base_url, max_retries=1, component="cta.llm"), "", srv


# The local model's smoke-test rows per environment: (label of PROMPTED, label of CTA-PROMPTED, prior source
# of llm-cta, tasks run, completion tokens per turn).
LLM_RUNS = {"pandora": ("SmolLM2-135M PROMPTED-NONTHINK (no prior)", "SmolLM2-135M CTA-PROMPTED-NONTHINK (prior)",
                        "true", 10, 8),
            "qa": ("SmolLM2-135M PROMPTED-NONTHINK", "SmolLM2-135M CTA-PROMPTED-NONTHINK (k_da, p_ret)", "estimated",
                   8, 16)}


def _llm_rows(ctx: ReproContext, env: str, tasks: list, client: Any, why: str,
              row: Any) -> tuple[list[list[Any]], str]:
    """The local model's rows (``row(label, metrics, "parse failures x%")``, see :data:`LLM_RUNS`) and the
    table note about them."""
    prompted, cta, cta_prior, n_tasks, max_tokens = LLM_RUNS[env]
    runs = ((prompted, "llm-prompted", None), (cta, "llm-cta", cta_prior))
    tasks = tasks[:n_tasks]
    if client is None:
        return [], f"Local LLM rows skipped: {why}."
    rows = []
    with ctx.progress(f"cta: local LLM on {env}", total=len(runs)) as bar:
        for label, pol, prior in runs:
            try:
                m = _eval(ctx, env, pol, tasks, prior, policy_kwargs={"client": client, "max_tokens": max_tokens})
            except Exception as exc:  # noqa: BLE001 - report and go on
                return rows, f"Local LLM rows incomplete: {type(exc).__name__}: {exc}."
            pf = m.policy_stats.get("parse_failures", 0) / max(1, m.policy_stats.get("llm_calls", 1))
            rows.append(row(f"{label}, {len(tasks)} tasks", m, f"parse failures {100 * pf:.0f}%"))
            ctx.log_metrics({f"{env}/{pol}": {**_headline(m), "parse_failure_rate": pf}})
            bar.advance()
    return rows, (f"LLM rows: SmolLM2-135M-Instruct, greedy, non-thinking, {max_tokens} tokens per turn, first "
                  f"{len(tasks)} tasks only (about 15 tokens/s on this CPU).")


def _qa(ctx: ReproContext, section: Section, client: Any = None, why: str = "") -> dict[str, Any]:
    from parsimon.cta.calibration import reliability_diagram
    from parsimon.cta.qa import get_bench

    n_ent = 2000 if ctx.full else 1000
    bench = get_bench(ctx.seed, n_ent)
    tasks = bench.tasks(None, seed=ctx.seed)
    rows, res = [], {}
    for label, pol, prior, key in (("Never retrieve", "never-retrieve", None, "NEVER RETRIEVE"),
                                   ("Always retrieve", "always-retrieve", None, "ALWAYS RETRIEVE"),
                                   ("CTA rule, raw verbalised confidence", "cta-planner", "raw", "PROMPTED"),
                                   ("CTA rule, isotonic-calibrated confidence", "cta-planner", "estimated",
                                    "CTA-PROMPTED"),
                                   ("Oracle rule (true probabilities)", "oracle", None, None)):
        m = _eval(ctx, "qa", pol, tasks, prior)
        res[f"{pol}:{prior}"] = m
        ctx.log_metrics({f"qa/{pol}/{prior}": _headline(m)})
        p = PAPER_T3.get(key) if key else None
        rows.append(_qa_row(label, m, f"{key}: {p[0]:.1f} / {p[1]:.3f} / {p[2]:.3f}" if p else "–"))
    llm_rows, llm_note = _llm_rows(ctx, "qa", tasks, client, why, _qa_row)
    rows.extend(llm_rows)
    section.tables.append(Table(
        "QA with optional retrieval (paper Table 3): retrieve %, accuracy, reward, oracle-decision match %",
        ["policy", "retrieve %", "accuracy", "reward", "match %", "paper (PopQA, Qwen3-8B) ret% / acc / reward"],
        rows,
        note=f"{len(tasks)} test questions over a generated knowledge base ({n_ent} entities, long-tail popularity),"
             f" BM25 top-1 retrieval, simulated answerer with known per-question probabilities; γ ~ U[0.1, 0.65]. "
             f"p_ret estimated on the validation split = {bench.p_ret:.3f}. Paper 'PROMPTED' is set beside the rule on "
             "uncalibrated confidence only as the nearest analogue. " + llm_note))
    bins = sorted({g for m in res.values() for g in m.per_rho})
    bin_rows = []
    for key, label in (("never-retrieve:None", "Never retrieve"), ("always-retrieve:None", "Always retrieve"),
                       ("cta-planner:raw", "CTA rule, raw confidence"),
                       ("cta-planner:estimated", "CTA rule, calibrated confidence")):
        m = res[key]
        bin_rows.append([label] + [_pct(m.per_rho[b]["match_rate"]) if b in m.per_rho else "–" for b in bins])
    section.tables.append(Table(
        "QA: oracle-decision match % per γ bin (paper Fig. 3: CTA-PROMPTED highest in every bin)",
        ["policy"] + [f"γ {b}" for b in bins], bin_rows,
        note="The oracle decides with the true per-question probabilities of the simulated answerer."))
    cal = res["cta-planner:estimated"]
    best_everywhere = all(
        cal.per_rho[b]["match_rate"] >= max(res[k].per_rho[b]["match_rate"] for k in
                                            ("never-retrieve:None", "always-retrieve:None", "cta-planner:raw")) - 1e-12
        for b in bins if b in cal.per_rho)
    section.claims.append(Claim("The calibrated CTA policy has the highest oracle-match rate in every γ bin",
                                "yes (Fig. 3)", "yes" if best_everywhere else "no", best_everywhere))
    fig = reliability_diagram({"raw verbalised": (bench.test_verbal, bench.test_correct),
                               "isotonic": (bench.calibrator.predict(bench.test_verbal), bench.test_correct)},
                              ctx.path("cta_qa_reliability.png"), title="QA: confidence calibration (test split)")
    section.figures.append(Figure(fig, "QA: reliability of the verbalised confidence before and after isotonic "
                                  "calibration fitted on the validation split."))
    from parsimon.cta.calibration import expected_calibration_error, fit_calibrator

    cal_rows = [["raw verbalised", f"{bench.ece_raw:.3f}"]]
    for kind in ("isotonic", "platt", "histogram"):
        c = fit_calibrator(kind, bench.val_verbal, bench.val_correct)
        cal_rows.append([kind, f"{expected_calibration_error(c.predict(bench.test_verbal), bench.test_correct):.3f}"])
    section.tables.append(Table("QA: expected calibration error on the test split, by calibrator (fitted on "
                                "validation)", ["confidence", "ECE (10 bins)"], cal_rows,
                                note="Paper (PopQA): raw 0.618, isotonic 0.029."))
    section.claims.append(Claim("Isotonic calibration of verbalised confidence lowers ECE",
                                "0.618 → 0.029 (PopQA)", f"{bench.ece_raw:.3f} → {bench.ece_cal:.3f}",
                                bench.ece_cal < bench.ece_raw / 3,
                                note="simulated over-confident answerer; ECE on the held-out test split"))
    cta, nev, alw = res["cta-planner:estimated"], res["never-retrieve:None"], res["always-retrieve:None"]
    section.claims.append(Claim("Calibrated CTA beats both static retrieval policies on reward",
                                "0.293 vs 0.226 / 0.213",
                                f"{cta.mean_reward:.3f} vs {nev.mean_reward:.3f} / {alw.mean_reward:.3f}",
                                cta.mean_reward > max(nev.mean_reward, alw.mean_reward)))
    return res


def _filereading(ctx: ReproContext, section: Section) -> None:
    """Tables 4-5 from :func:`parsimon.cta.filereading.filereading_part`; where that package cannot be imported
    but a plug-in registered ``filereading``, generic per-ρ tables of its registered policies."""
    from parsimon.cta import registry

    try:
        from parsimon.cta.filereading import filereading_part
    except ImportError as exc:
        if "filereading" in registry.ENVS:
            _filereading_generic(ctx, section)
        else:
            section.not_reproduced.append(f"FILEREADING (Tables 4-5): parsimon.cta.filereading is not available "
                                          f"({exc}).")
        return
    out = filereading_part(ctx)
    section.tables.extend(out["tables"])
    section.figures.extend(out["figures"])
    section.claims.extend(out["claims"])
    section.not_reproduced.extend(out["not_reproduced"])


def _filereading_generic(ctx: ReproContext, section: Section) -> None:
    from parsimon.cta import get_env

    spec = get_env("filereading")
    tasks = spec.generate(300 if ctx.full else 24, ctx.seed)

    def cell(d: dict, key: str, pct: bool = False) -> str:
        v = d.get(key)
        if v is None:
            return "–"
        return f"{100 * v:.1f}" if pct else f"{v:.3f}"

    rows, pareto = [], []
    pols = [p for p in ("oracle", "cta-planner", "test-then-code", "code-first") if p in spec.policies]
    with ctx.progress("cta: FILEREADING policies", total=len(pols)) as bar:
        for pol in pols:
            m = _eval(ctx, "filereading", pol, tasks, "default")
            for g, d in [*m.per_rho.items(), ("avg", {"n": m.n_tasks, "mean_reward": m.mean_reward, **m.summary})]:
                rows.append([pol, g, d["n"], f"{d['mean_reward']:.3f}", cell(d, "U"), cell(d, "C"), cell(d, "turns"),
                             cell(d, "correct"), cell(d, "guess_and_go", pct=True)])
            pareto.append((pol, m.summary.get("U", 0.0) + m.summary.get("C", 0.0), m.mean_reward))
            bar.advance()
    section.tables.append(Table(
        "FILEREADING per ρ (paper Table 4: CTA-RL 0.382 / 0.315 / 0.230 / 0.147 at ρ = 0.5 / 1 / 2 / 4, avg 0.268)",
        ["policy", "ρ", "n", "reward", "U", "C", "turns", "accuracy", "guess-and-go %"], rows,
        note=f"{len(tasks)} generated tasks (quick mode); columns the environment does not report show –."))
    if "cta-planner" in spec.policies:
        prows = []
        for src in [p for p in ("true", "estimated", "released", "noisy", "uniform", "adversarial") if p in spec.priors]:
            try:
                m = _eval(ctx, "filereading", "cta-planner", tasks, src)
            except ValueError as exc:  # e.g. `released` needs the paper's files
                prows.append([src, "–", str(exc)[:80]])
                continue
            prows.append([src, f"{m.mean_reward:.3f}", ""])
        section.tables.append(Table("FILEREADING prior sensitivity (paper Table 5, CTA-RL: BERT 0.269, noisy 0.251, "
                                    "uniform 0.251, adversarial 0.203)", ["prior", "CTA planner reward", "note"],
                                    prows))
    if pareto:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.8, 3.6))
        _scatter(ax, pareto, "mean exploration actions (U + C)",
                 "FILEREADING: reward vs cost")
        section.figures.append(ctx.save_figure(fig, "cta_filereading_pareto.png",
                                               "FILEREADING: mean reward against exploration cost per policy."))


def _scatter(ax: Any, points: list[tuple[str, float, float]], xlabel: str, title: str) -> None:
    """Labelled points (name, cost, reward) on ``ax``."""
    for name, cost, rew in points:
        ax.scatter(cost, rew)
        ax.annotate(name, (cost, rew), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean reward")
    ax.set_title(title)


def _figure(ctx: ReproContext, pandora: dict, qa: dict) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, res, cost_key, title in ((axes[0], pandora, "verifies", "Pandora"), (axes[1], qa, "retrieved", "QA")):
        _scatter(ax, [(name.replace(":None", ""), m.summary[cost_key], m.mean_reward) for name, m in res.items()],
                 "mean verifications" if cost_key == "verifies" else "retrieval rate",
                 f"{title}: reward vs exploration cost")
    return ctx.save_figure(fig, "cta_reward_vs_cost.png", "Reward against exploration cost per policy (Pandora: "
                           "verifications; QA: retrieval rate).")


def reproduce(ctx: ReproContext) -> Section:
    """Pandora, QA and (when present) FILEREADING tables beside the paper's."""
    t0 = time.perf_counter()
    section = Section(
        name="cta", paper=PAPER,
        summary=("Exact optimal planners (Pandora Algorithm 1, verified against the closed form and brute-force "
                 "policy enumeration; QA rule retrieve iff p_ret·γ ≥ k_da) run through parsimon.cta.evaluate, with "
                 "every action in the proof-of-action log and costs in the ledger. The local 135M model plays the "
                 "LLM agents on a few Pandora tasks as a smoke test."),
        config={"seed": ctx.seed, "full": ctx.full, "pandora_alpha": 1.2, "qa_gamma_range": [0.1, 0.65]},
    )
    with ctx.progress("cta: starting the local model", total=None):
        client, why, server = _start_llm(ctx)
    try:
        with ctx.progress("cta: Pandora", total=None):
            pandora = _pandora(ctx, section, client, why)
        with ctx.progress("cta: QA", total=None):
            qa = _qa(ctx, section, client, why)
    finally:
        if server is not None:
            server.stop()
    section.figures.append(_figure(ctx, {k: v for k, v in pandora.items() if not k.startswith("reasoner:")}, qa))
    with ctx.progress("cta: FILEREADING", total=None):
        try:
            _filereading(ctx, section)
        except Exception as exc:  # noqa: BLE001 - report and go on: the other tables stand on their own
            section.not_reproduced.append(f"FILEREADING part failed: {type(exc).__name__}: {exc}")
    section.not_reproduced += [
        "Qwen3-8B agents (thinking and non-thinking, Tables 2-4): the paper's 94% vs 23% match needs a thinking 8B "
        "model; SmolLM2-135M cannot do the arithmetic on priors and mostly emits fixed or malformed actions, so "
        "its rows are a smoke test, not a reproduction. Our planners show what calibrated priors buy.",
        "CTA-RL / RL (GRPO on 8×A100): out of scope on CPU.",
        "PopQA with Contriever: replaced by a generated knowledge base with BM25 and a simulated answerer whose "
        "per-question correctness probability is known (so the oracle rule is exact).",
        "QA LLM rows use only 8 questions with the 135M model: a smoke test of the pipeline, not a measurement.",
    ]
    section.config["seconds_inner"] = round(time.perf_counter() - t0, 2)
    return section
