"""Free vs constrained output of every LLM agent: parse failures, invalid actions, rewards, tokens, seconds.

For one endpoint (the local SmolLM2-135M by default) and each output mode, this runs the CTA-PROMPTED
non-thinking agent (``llm-cta``) on Pandora, QA and FILEREADING, and the evolution loop's LLM mutator on
the CFR+ seed program, and measures per decision: the share of replies that gave no action (parse
failures), the share of environment steps the environment refused (invalid actions), the reward and the
oracle-match rate (beside the exact planners on the same tasks and the paper's rows), completion and total
tokens, and wall seconds. A mutator "decision" is one mutation request; its reward is whether the child
program evaluates (CFR on Kuhn poker in the sandbox) and whether it beats the parent.

Used by ``benchmarks/llm_agents_bench.py`` (the full sizes) and the ``llm`` report section (:data:`QUICK`).
Each (workload, mode) unit is written to ``work_dir`` when it finishes and read back on a rerun with
``resume=True``, so an interrupted measurement continues where it stopped.

This module sits above :mod:`parsimon.cta` and :mod:`parsimon.games` (it measures them); nothing in the LLM
client imports it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.llm.structured import OUTPUT_MODES

__all__ = ["AgentBenchConfig", "QUICK", "REPORT_FULL", "SUMMARY_HEADER", "WORKLOADS", "run_agent_bench",
           "summary_rows"]

WORKLOADS = ("pandora", "qa", "filereading", "mutator")
# The exact planners run on the same tasks for reference (policy name, prior source).
_PLANNERS = {"pandora": [("oracle", "true"), ("cta-planner", "true")],
             "qa": [("oracle", None), ("cta-planner", "estimated")],
             "filereading": [("oracle", None), ("cta-planner", "estimated")]}


@dataclass(frozen=True)
class AgentBenchConfig:
    """Sizes and settings of one measurement.

    Attributes:
        pandora / qa / filereading: tasks per environment (issue 11: 100 / 200 / 50).
        mutations: mutation requests of the CFR+ seed program (issue 11: 20).
        outputs: the output modes compared.
        policy: the LLM agent (``llm-cta``: CTA-PROMPTED, non-thinking, greedy).
        filereading_max_turns: FILEREADING's turn limit (paper: 8).
        mutator_max_tokens: completion tokens per mutation request (thinking field capped at 300 tokens).
        mutator_iterations: CFR iterations on Kuhn poker when a child is evaluated.
        seed: task generation, priors and the mutator's sampling seeds.
    """

    pandora: int = 100  # issue 11
    qa: int = 200  # issue 11
    filereading: int = 50  # issue 11
    mutations: int = 20  # issue 11
    outputs: tuple[str, ...] = OUTPUT_MODES
    policy: str = "llm-cta"
    filereading_max_turns: int = 8  # paper §3.3
    mutator_max_tokens: int = 768
    mutator_iterations: int = 100
    seed: int = 0
    extra: dict = field(default_factory=dict)  # free-form notes recorded with the result

    def __post_init__(self) -> None:
        for name in ("pandora", "qa", "filereading", "mutations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"`{name}` must be an int >= 0, got {value!r}")
        bad = [o for o in self.outputs if o not in OUTPUT_MODES]
        if bad or not self.outputs:
            raise ConfigError(f"`outputs` must be a non-empty subset of {OUTPUT_MODES}, got {self.outputs}")
        if self.filereading_max_turns < 1 or self.mutator_max_tokens < 1 or self.mutator_iterations < 1:
            raise ConfigError("`filereading_max_turns`, `mutator_max_tokens` and `mutator_iterations` must be >= 1")


# The report's quick setting: a few decisions per workload (about two minutes on one quiet thread).
QUICK = AgentBenchConfig(pandora=4, qa=3, filereading=1, mutations=1, filereading_max_turns=2)
# The report's --full setting.
REPORT_FULL = AgentBenchConfig(pandora=20, qa=20, filereading=4, mutations=4)


def _paper_rows() -> dict[str, str]:
    from parsimon.cta.filereading.report import PAPER_TABLE4
    from parsimon.cta.reproduce import PAPER_T2, PAPER_T3

    t2, t3 = PAPER_T2["CTA-PROMPTED-NONTHINK"], PAPER_T3["PROMPTED-NONTHINK"]
    return {"pandora": f"Qwen3-8B CTA-PROMPTED-NONTHINK: match {t2[0]:.0f}%, reward {t2[1]:.3f} (Table 2)",
            "qa": f"Qwen3-8B PROMPTED-NONTHINK: retrieve {t3[0]:.1f}%, reward {t3[2]:.3f} (Table 3)",
            "filereading": f"Qwen3-8B CTA-PROMPTED: reward {PAPER_TABLE4['CTA-PROMPTED'][4]:.3f} (Table 4)",
            "mutator": "paper: Gemini 2.5 Pro mutations (no parse statistics given)"}


def _tasks(env: str, n: int, seed: int) -> list:
    from parsimon.cta.registry import get_env

    return list(get_env(env).generate(n, seed))


def _env_unit(env: str, output: str, tasks: list, client: Any, cfg: AgentBenchConfig, out: Path,
              progress: Any, resume: bool) -> dict:
    from parsimon.cta.evaluate import evaluate, read_trajectories
    from parsimon.cta.registry import get_env

    env_obj = get_env(env).make(max_turns=cfg.filereading_max_turns) if env == "filereading" else env
    traj = out / "trajectories.jsonl"
    done = {e.index for e in read_trajectories(traj)} if resume and traj.is_file() else set()
    t0 = time.perf_counter()
    # with resume, the episodes already in out/trajectories.jsonl are kept (an interrupted unit continues)
    m = evaluate(env_obj, cfg.policy, tasks, seed=cfg.seed, out_dir=out, audit=False, progress=progress,
                 policy_kwargs={"client": client, "output": output}, resume=resume)
    seconds = time.perf_counter() - t0
    st = m.policy_stats
    calls = int(st.get("llm_calls", 0))
    timed_calls = sum(int(e.stats.get("llm_calls", 0)) for e in m.episodes if e.index not in done)
    steps = [s for e in m.episodes for s in e.steps]
    return {
        "workload": env, "output": output, "n": m.n_tasks, "decisions": calls,
        "parse_failure_rate": st.get("parse_failures", 0) / calls if calls else None,
        "invalid_action_rate": sum(not s.valid for s in steps) / len(steps) if steps else None,
        "reward": m.mean_reward, "match_rate": m.match_rate,
        "tokens_per_decision": (st.get("tokens_in", 0) + st.get("tokens_out", 0)) / calls if calls else None,
        "completion_tokens_per_decision": st.get("tokens_out", 0) / calls if calls else None,
        "seconds_per_decision": seconds / timed_calls if timed_calls else None,
        "llm_errors": int(st.get("llm_errors", 0)), "reasks": int(st.get("reasks", 0)),
        "cut_at_max_tokens": int(st.get("replies_cut", 0)),
        "modes": {k[len("replies_"):].replace("_", "-"): int(v) for k, v in st.items()
                  if k.startswith("replies_") and k != "replies_cut"},
        "max_tokens": getattr(_probe_policy(env, cfg, output), "max_tokens", None), "seconds": seconds,
    }


def _probe_policy(env: str, cfg: AgentBenchConfig, output: str) -> Any:
    from parsimon.cta.registry import make_policy

    return make_policy(env, cfg.policy, output=output, client=object())


def _planners(env: str, tasks: list, cfg: AgentBenchConfig) -> list[dict]:
    from parsimon.cta.evaluate import evaluate
    from parsimon.cta.registry import get_env

    rows = []
    for name, prior in _PLANNERS[env]:
        env_obj = get_env(env).make(max_turns=cfg.filereading_max_turns) if env == "filereading" else env
        m = evaluate(env_obj, name, tasks, prior=prior if prior is not None else "default", seed=cfg.seed,
                     audit=False, ledger=False)
        rows.append({"workload": env, "policy": name, "prior": m.prior, "reward": m.mean_reward,
                     "match_rate": m.match_rate})
    return rows


def _mutator_unit(output: str, client: Any, cfg: AgentBenchConfig, progress: Any) -> dict:
    import numpy as np

    from parsimon.games.candidate import SEED_CFR_PLUS
    from parsimon.games.evolve.evaluate import Evaluator
    from parsimon.games.evolve.mutate import EditError, LLMMutator
    from parsimon.games.evolve.sandbox import Limits

    evaluator = Evaluator(["kuhn_poker"], iterations=cfg.mutator_iterations, limits=Limits(60, 1024),
                          cascade_factor=None, ledger=False)
    parent_fit = evaluator.evaluate(SEED_CFR_PLUS).fitness["kuhn_poker"]
    mutator = LLMMutator(client, output=output, max_tokens=cfg.mutator_max_tokens)
    stats = {"parse": 0, "apply": 0, "valid": 0, "improved": 0, "tokens": 0, "completion": 0, "reasks": 0,
             "cut": 0, "errors": 0}
    modes: dict[str, int] = {}
    bar = progress.add_task(f"mutator ({output})", total=cfg.mutations) if hasattr(progress, "add_task") else None
    t0 = time.perf_counter()
    for i in range(cfg.mutations):
        rng = np.random.default_rng([cfg.seed, i])
        usage = None
        try:
            child = mutator.mutate(SEED_CFR_PLUS, [], rng)
            usage = child.usage
            ev = evaluator.evaluate(child.source)
            stats["valid"] += ev.valid
            stats["improved"] += ev.valid and ev.fitness["kuhn_poker"] > parent_fit
        except EditError as exc:
            usage = getattr(exc, "usage", None)
            stats[getattr(exc, "stage", "parse")] += 1
        except Exception as exc:  # noqa: BLE001 - an endpoint error is counted, not fatal to the measurement
            from parsimon.errors import LLMError

            if not isinstance(exc, LLMError):
                raise
            stats["errors"] += 1
        if usage:
            stats["tokens"] += usage["prompt_tokens"] + usage["completion_tokens"]
            stats["completion"] += usage["completion_tokens"]
            stats["reasks"] += usage.get("reasks", 0)
            stats["cut"] += usage.get("finish_reason") == "length"
            modes[usage.get("mode", "free")] = modes.get(usage.get("mode", "free"), 0) + 1
        if bar is not None:
            progress.advance(bar)
    seconds = time.perf_counter() - t0
    if bar is not None:
        progress.update(bar, visible=False)
    n = cfg.mutations
    return {"workload": "mutator", "output": output, "n": n, "decisions": n,
            "parse_failure_rate": (stats["parse"] + stats["errors"]) / n if n else None,
            "invalid_action_rate": stats["apply"] / n if n else None,
            "reward": stats["valid"] / n if n else None, "match_rate": stats["improved"] / n if n else None,
            "tokens_per_decision": stats["tokens"] / n if n else None,
            "completion_tokens_per_decision": stats["completion"] / n if n else None,
            "seconds_per_decision": seconds / n if n else None, "llm_errors": stats["errors"],
            "reasks": stats["reasks"], "cut_at_max_tokens": stats["cut"], "modes": modes,
            "max_tokens": cfg.mutator_max_tokens, "seconds": seconds, "parent_fitness": parent_fit}


def run_agent_bench(base_url: str, cfg: AgentBenchConfig = AgentBenchConfig(), *, work_dir: str | Path,
                    model: str | None = None, progress: Any = None, resume: bool = False) -> dict:
    """Measure every workload in every output mode against the endpoint at ``base_url``.

    Returns ``{"config", "rows", "planners", "paper", "seconds"}``; each row is one (workload, output)
    unit (see the module docstring for its numbers). Rows are also written to ``work_dir/<workload>-<output>
    .json`` as they finish; with ``resume`` the finished ones are read back instead of measured again, and an
    unfinished environment unit keeps its finished episodes (its seconds per decision are timed over the
    episodes run after the resume).
    """
    from parsimon.llm.client import ChatClient

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    # 300 s per attempt: a 768-token mutation reply from a small model on a loaded CPU can take minutes
    client = ChatClient(base_url, model, max_retries=1, timeout=300.0, component="llm.agent_bench")
    t0 = time.perf_counter()
    rows, planners = [], []
    try:
        # cheapest first, so an interrupted measurement has the most workloads done
        for workload in ("pandora", "mutator", "qa", "filereading"):
            if workload == "mutator":
                for output in cfg.outputs if cfg.mutations else ():
                    rows.append(_unit(work, "mutator", output, resume,
                                      lambda output=output: _mutator_unit(output, client, cfg, progress)))
                continue
            n = getattr(cfg, workload)
            if n == 0:
                continue
            tasks = _tasks(workload, n, cfg.seed)
            planners += _planners(workload, tasks, cfg)
            for output in cfg.outputs:
                rows.append(_unit(work, workload, output, resume,
                                  lambda env=workload, output=output, tasks=tasks: _env_unit(
                                      env, output, tasks, client, cfg, work / f"{env}-{output}", progress,
                                      resume)))
    finally:
        client.close()
    return {"config": asdict(cfg), "rows": rows, "planners": planners, "paper": _paper_rows(),
            "seconds": time.perf_counter() - t0}


def _unit(work: Path, workload: str, output: str, resume: bool, measure: Any) -> dict:
    path = work / f"{workload}-{output}.json"
    if resume and path.is_file():
        return json.loads(path.read_text())
    row = measure()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(row, indent=1))
    tmp.replace(path)
    return row


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


SUMMARY_HEADER = ["workload", "output", "n", "decisions", "parse failures", "invalid actions", "reward / valid",
                  "match / improved", "modes", "tokens / decision (completion)", "s / decision", "exact planners",
                  "paper"]


def summary_rows(result: dict) -> list[list[Any]]:
    """Table rows (see :data:`SUMMARY_HEADER`) for a result of :func:`run_agent_bench`."""
    planners: dict[str, list[str]] = {}
    for p in result["planners"]:
        planners.setdefault(p["workload"], []).append(
            f"{p['policy']}: {_num(p['reward'])}" + (f" / {_pct(p['match_rate'])}" if p["match_rate"] is not None
                                                     else ""))
    rows = []
    for r in result["rows"]:
        modes = ", ".join(f"{k} {v}" for k, v in sorted(r["modes"].items())) or "–"
        if r["reasks"]:
            modes += f"; {r['reasks']} re-asked"
        if r["cut_at_max_tokens"]:
            modes += f"; {r['cut_at_max_tokens']} cut at {r['max_tokens']} tokens"
        rows.append([r["workload"], r["output"], r["n"], r["decisions"], _pct(r["parse_failure_rate"]),
                     _pct(r["invalid_action_rate"]), _num(r["reward"]),
                     _pct(r["match_rate"]) if r["match_rate"] is not None else "–", modes,
                     f"{_num(r['tokens_per_decision'], '.0f')} ({_num(r['completion_tokens_per_decision'], '.0f')})",
                     _num(r["seconds_per_decision"], ".2f"), "; ".join(planners.get(r["workload"], [])) or "–",
                     result["paper"].get(r["workload"], "–")])
    return rows
