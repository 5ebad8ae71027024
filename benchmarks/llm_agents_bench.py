"""LLM agents, free vs constrained output: parse failures, invalid actions, rewards, tokens and seconds.

For SmolLM2-135M-Instruct on the local server (one thread) by default, or any endpoint (``--base-url``):
the CTA-PROMPTED non-thinking agent on Pandora (100 generated tasks), QA (200) and FILEREADING (50), and the
evolution loop's LLM mutator (20 mutation requests of the CFR+ seed), each with free-text and constrained
(JSON schema / grammar) output, beside the exact planners on the same tasks and the paper's rows. See
:mod:`parsimon.llm.agent_eval` for what each number means.

Writes ``llm_agents.json`` and ``llm_agents.png`` into a run folder (default ``runs/llm-agents-bench-<stamp>``);
``--save`` also copies them to ``benchmarks/results/``. Slow on a shared 2-core CPU (hours at the full sizes:
grammar-constrained sampling in llama-cpp-python checks the grammar over the whole vocabulary for every token);
``--resume`` continues an interrupted run in ``--out``.

    python benchmarks/llm_agents_bench.py                 # the full sizes
    python benchmarks/llm_agents_bench.py --quick         # the report's few tasks

``--combine RUN [RUN ...]`` measures nothing: it joins the rows of finished runs (each workload from the
last run given that measured it, with that run's id beside the row), for a workload re-measured at a
larger size in a run of its own (``--pandora 0 --qa 0 --mutations 0 --filereading 50``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    outputs = list(dict.fromkeys(r["output"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / max(1, len(outputs))
    for j, (key, title) in enumerate((("parse_failure_rate", "parse failures (share of decisions)"),
                                      ("reward", "reward (mutator: share of valid children)"),
                                      ("seconds_per_decision", "seconds per decision"))):
        ax = axes[j]
        for k, out in enumerate(outputs):
            vals = [next((r[key] or 0.0 for r in rows if r["workload"] == w and r["output"] == out), 0.0)
                    for w in workloads]
            ax.bar([i + k * width for i in range(len(workloads))], vals, width, label=out)
        if key == "reward":
            for i, w in enumerate(workloads):
                oracle = [p["reward"] for p in result["planners"] if p["workload"] == w and p["policy"] == "oracle"]
                if oracle:
                    ax.plot([i - width / 2, i + width * len(outputs) - width / 2], [oracle[0]] * 2, "k--", lw=1)
        ax.set_xticks([i + width * (len(outputs) - 1) / 2 for i in range(len(workloads))], workloads)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("SmolLM2-135M agents, free vs constrained output (dashed: the exact oracle's reward)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _report(result: dict, folder: Path, *, save: bool, suffix: str = "") -> None:
    """Write ``llm_agents.json`` and ``.png`` into ``folder``, print the table, and copy both to
    ``benchmarks/results/`` (named with ``suffix``) when ``save``."""
    from parsimon.llm.agent_eval import SUMMARY_HEADER, summary_rows

    path = folder / "llm_agents.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    _plot(result, path.with_suffix(".png"))
    print(" | ".join(SUMMARY_HEADER))
    for row in summary_rows(result):
        print(" | ".join(str(x) for x in row))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, RESULTS / f"llm_agents{suffix}.json")
        shutil.copy(path.with_suffix(".png"), RESULTS / f"llm_agents{suffix}.png")
        print(f"saved to {RESULTS}")


def combine(runs: list[Path]) -> dict:
    """The rows and planners of several finished runs, each workload from the last run that measured it."""
    from parsimon.errors import ConfigError

    rows: dict[tuple[str, str], dict] = {}
    planners: dict[str, list[dict]] = {}
    sources = []
    for folder in runs:
        path = folder / "llm_agents.json"
        if not path.is_file():
            raise ConfigError(f"`--combine`: {folder} has no llm_agents.json (is it a finished run of this benchmark?)")
        res = json.loads(path.read_text())
        run_id = json.loads((folder / "config.json").read_text()).get("run_id", folder.name) \
            if (folder / "config.json").is_file() else folder.name
        sources.append({"run": str(folder), "run_id": run_id, "config": res["config"]})
        measured = {r["workload"] for r in res["rows"]}
        for r in res["rows"]:
            rows[(r["workload"], r["output"])] = {**r, "run_id": run_id}
        for w in measured:
            planners[w] = [p for p in res["planners"] if p["workload"] == w]
        paper = res["paper"]
    order = ["pandora", "mutator", "qa", "filereading"]
    out_rows = sorted(rows.values(), key=lambda r: (order.index(r["workload"]) if r["workload"] in order else 9,
                                                    r["output"]))
    return {"config": {"combined": sources}, "rows": out_rows,
            "planners": [p for w in order if w in planners for p in planners[w]], "paper": paper,
            "seconds": None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="The report's sizes (a few decisions per workload).")
    ap.add_argument("--pandora", type=int, help="Pandora tasks (default 100; quick 6).")
    ap.add_argument("--qa", type=int, help="QA tasks (default 200; quick 6).")
    ap.add_argument("--filereading", type=int, help="FILEREADING tasks (default 50; quick 1).")
    ap.add_argument("--mutations", type=int, help="Mutation requests (default 20; quick 2).")
    ap.add_argument("--filereading-max-turns", type=int, help="FILEREADING turn limit (default 8, the paper's).")
    ap.add_argument("--base-url", help="Measure this endpoint instead of starting the local model.")
    ap.add_argument("--model", help="Model name for --base-url.")
    ap.add_argument("--threads", type=int, default=1, help="Generation threads of the local model (default 1).")
    ap.add_argument("--seed", type=int, default=0, help="Task, prior and sampling seed.")
    ap.add_argument("--out", type=Path, help="Run folder (default runs/llm-agents-bench-<stamp>).")
    ap.add_argument("--resume", action="store_true", help="Continue the run in --out.")
    ap.add_argument("--save", action="store_true", help="Also write benchmarks/results/llm_agents.{json,png}.")
    ap.add_argument("--combine", type=Path, nargs="+", metavar="RUN",
                    help="Measure nothing: join finished runs' rows (each workload from the last run that measured "
                         "it) into --out (default runs/llm-agents-combined).")
    args = ap.parse_args(argv)
    lowest = {"pandora": 0, "qa": 0, "filereading": 0, "mutations": 0, "filereading_max_turns": 1, "threads": 1}
    for name, low in lowest.items():
        value = getattr(args, name)
        if value is not None and value < low:
            ap.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if args.combine:
        from parsimon.errors import ConfigError

        try:
            result = combine(args.combine)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out = args.out or Path("runs/llm-agents-combined")
        out.mkdir(parents=True, exist_ok=True)
        _report(result, out, save=args.save)
        return 0

    from parsimon.llm.agent_eval import QUICK, AgentBenchConfig, run_agent_bench
    from parsimon.progress import standard_progress
    from parsimon.run import start_run

    cfg = QUICK if args.quick else AgentBenchConfig()
    overrides = {k: v for k, v in (("pandora", args.pandora), ("qa", args.qa), ("filereading", args.filereading),
                                   ("mutations", args.mutations), ("filereading_max_turns", args.filereading_max_turns),
                                   ("seed", args.seed)) if v is not None}
    cfg = replace(cfg, **overrides, extra={"endpoint": args.base_url or "local SmolLM2-135M-Instruct",
                                           "threads": args.threads})
    with start_run("llm-agents-bench", cfg, out_dir=args.out, seed=args.seed, resume=args.resume) as run, \
            standard_progress() as progress:
        if args.base_url:
            result = run_agent_bench(args.base_url, cfg, model=args.model, work_dir=run.dir / "units",
                                     progress=progress, resume=args.resume)
        else:
            from parsimon.llm import LocalServer

            with LocalServer(port=0, n_threads=args.threads, log_path=run.dir / "server.log") as srv:
                result = run_agent_bench(srv.base_url, cfg, work_dir=run.dir / "units", progress=progress,
                                         resume=args.resume)
        result["python"] = sys.version.split()[0]
        run.set_metrics({f"{r['workload']}.{r['output']}.parse_failure_rate": r["parse_failure_rate"]
                         for r in result["rows"]})
        _report(result, run.dir, save=args.save, suffix="_quick" if args.quick else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
