"""GUI benchmark: environment throughput beside BrowserGym, policy step latency, the constrained small model.

1. Environment steps per second (act + observe: screenshot, accessibility tree, DOM), on one core (each
   side runs in its own process pinned to CPU 0), on the same MiniWoB++ tasks, pages and Chromium:
   ours, BrowserGym with its defaults (MiniWoB's 100 ms ``slow_mo``, 0.5 s ``pre_observation_delay``)
   and BrowserGym with both set to 0 (its fastest). The actions toggle checkboxes or radios, so the
   episode never ends; the median over ``--repeats`` runs of ``--steps`` steps is reported.
2. Step latency of the non-LLM policies (decide, escalate, act, observe, audit, feedback), target < 300 ms.
3. The ``axtree-json`` policy with the local SmolLM2-135M: invalid-action rate with the JSON-schema
   constraint (target 0%) and without it, and the success rate.

Writes ``gui.json`` and ``gui.png`` into a run folder (default ``runs/gui-bench-<stamp>``; ``--out DIR``);
``--save`` also copies them to ``benchmarks/results/``. Run: ``python benchmarks/gui_bench.py``. ``--quick``
checks the whole pipeline in seconds: one throughput task, three policy tasks (``gui_quick.*`` with ``--save``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("click-checkboxes", "click-checkboxes-large", "click-option")
POLICY_TASKS = ("click-button", "enter-text", "click-checkboxes", "click-link", "login-user", "click-tab-2",
                "email-inbox", "search-engine", "click-dialog-2", "read-table")
LLM_TASKS = ("click-button", "click-link", "enter-text", "focus-text", "click-test-2", "click-dialog",
             "click-checkboxes", "click-option")


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def _toggles(elements) -> list[tuple[int, tuple[float, float]]]:
    return [(e.pid, e.center) for e in elements if e.tag == "input" and e.type in ("checkbox", "radio")]


def child_ours(task: str, steps: int) -> dict:
    """Steps/s of our BrowserEnv with full observations."""
    _pin()
    from parsimon.gui.actions import Action, Element
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv

    env = BrowserEnv()
    t = MiniWoBTask(task)
    t.max_steps = steps + 1  # BrowserGym's env has no step limit either
    try:
        obs, _ = env.reset(seed=0, options={"task": t})
        boxes = _toggles(obs.elements)
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            obs, *_ = env.step(Action("click", target=Element(boxes[i % len(boxes)][0])))
            times.append(time.perf_counter() - t0)
        return {"steps_per_s": len(times) / sum(times), "median_step_s": statistics.median(times)}
    finally:
        env.close()


def child_browsergym(task: str, steps: int, fast: bool) -> dict:
    """Steps/s of BrowserGym's MiniWoB env on the same pages and Chromium (coordinate clicks)."""
    _pin()
    from parsimon.gui.peers import _launch_with_debian_chromium
    from parsimon.gui.suites.base import shared_server
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv

    # where the toggles are: read once with our env (same page, same seed, same viewport)
    env = BrowserEnv(observe_axtree=False, observe_dom=False)
    obs, _ = env.reset(seed=0, options={"task": MiniWoBTask(task)})
    boxes = _toggles(obs.elements)
    env.close()
    os.environ["MINIWOB_URL"] = shared_server().url("/miniwob/miniwob/")
    import browsergym.miniwob  # noqa: F401
    import gymnasium as gym
    from browsergym.core.action.highlevel import HighLevelActionSet

    _launch_with_debian_chromium()
    kwargs = {"slow_mo": 0, "pre_observation_delay": 0.0} if fast else {}
    bg = gym.make(f"browsergym/miniwob.{task}", action_mapping=HighLevelActionSet(subsets=["coord"]).to_python_code,
                  **kwargs)
    try:
        bg.reset(seed=0)
        scale = getattr(bg.unwrapped.page, "_bgym_scale_factor", 1.0)
        times = []
        for i in range(steps):
            x, y = boxes[i % len(boxes)][1]
            t0 = time.perf_counter()
            bg.step(f"mouse_click({x * scale}, {y * scale})")
            times.append(time.perf_counter() - t0)
        return {"steps_per_s": len(times) / sum(times), "median_step_s": statistics.median(times)}
    finally:
        bg.close()


def child_latency(policy: str, n_tasks: int) -> dict:
    """Per-step seconds of a non-LLM policy through the governed episode loop (the first ``n_tasks`` tasks)."""
    _pin()
    from parsimon.governance import FeedbackEmitter, get_audit_log, run_scope
    from parsimon.gui.agent import run_episode
    from parsimon.gui.evaluate import make_policy
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv

    env = BrowserEnv()
    pol = make_policy(policy)
    secs, decide, success = [], [], []
    try:
        with run_scope(run=f"gui-bench-latency-{policy}"):
            for task in POLICY_TASKS[:n_tasks]:
                res = run_episode(env, pol, MiniWoBTask(task), 0, feedback=FeedbackEmitter("adaptive"),
                                  audit=get_audit_log())
                secs += [r.seconds for r in res.records if r.action]
                decide += [r.decide_s for r in res.records if r.action]
                success.append(res.success)
    finally:
        env.close()
    secs.sort()
    return {"steps": len(secs), "median_s": statistics.median(secs), "p90_s": secs[int(0.9 * (len(secs) - 1))],
            "mean_s": statistics.mean(secs), "share_under_300ms": sum(s < 0.3 for s in secs) / len(secs),
            "median_decide_s": statistics.median(decide), "success_rate": sum(success) / len(success)}


def child_llm(constrained: bool, seeds: int) -> dict:
    """The axtree-json policy with SmolLM2-135M served locally (one thread)."""
    _pin()
    from parsimon.gui.agent import run_episode
    from parsimon.gui.policies.textpolicy import AXTreePolicy, AXTreePolicyConfig
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv
    from parsimon.llm import ChatClient, LocalServer

    out = {"episodes": 0, "decisions": 0, "invalid": 0, "successes": 0, "tokens": 0, "seconds": 0.0}
    with LocalServer(port=0) as srv:
        pol = AXTreePolicy(ChatClient(base_url=srv.base_url, max_retries=1),
                           config=AXTreePolicyConfig(constrained=constrained))
        env = BrowserEnv(observe_dom=False)
        try:
            for task in LLM_TASKS:
                for seed in range(seeds):
                    res = run_episode(env, pol, MiniWoBTask(task), seed, max_steps=6)
                    out["episodes"] += 1
                    out["decisions"] += res.decisions
                    out["invalid"] += res.invalid
                    out["successes"] += res.success
                    out["tokens"] += res.tokens
                    out["seconds"] += sum(r.seconds for r in res.records)
        finally:
            env.close()
            pol.close()
    out["invalid_rate"] = out["invalid"] / max(1, out["decisions"])
    out["success_rate"] = out["successes"] / max(1, out["episodes"])
    out["seconds_per_decision"] = out["seconds"] / max(1, out["decisions"])
    return out


def _child(args: list[str], timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-600:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/gui-bench-<stamp>)")
    parser.add_argument("--save", action="store_true", help="also write benchmarks/results/gui.json and gui.png")
    parser.add_argument("--steps", type=int, default=30, help="steps per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per side and task (median)")
    parser.add_argument("--llm-seeds", type=int, default=2, help="seeds per task for the SmolLM2 policy (0 = skip)")
    parser.add_argument("--quick", action="store_true",
                        help="one throughput task and three policy tasks: the pipeline in seconds, not a measurement")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ours":
            res = child_ours(rest[0], int(rest[1]))
        elif kind in ("browsergym", "browsergym-fast"):
            res = child_browsergym(rest[0], int(rest[1]), kind == "browsergym-fast")
        elif kind == "latency":
            res = child_latency(rest[0], int(rest[1]))
        else:
            res = child_llm(rest[0] == "constrained", int(rest[1]))
        print(json.dumps(res))
        return
    os.environ.setdefault("PARSIMON_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "parsimon-gui-bench"))
    from parsimon.run import default_out, start_run

    out = args.out or default_out("gui bench")
    tasks = TASKS[:1] if args.quick else TASKS
    n_policy_tasks = 3 if args.quick else len(POLICY_TASKS)
    config = {"steps": args.steps, "repeats": args.repeats, "tasks": list(tasks), "llm_seeds": args.llm_seeds,
              "policy_tasks": list(POLICY_TASKS[:n_policy_tasks]), "quick": args.quick}
    with start_run("gui bench", config, out_dir=out) as run:
        res: dict = {"throughput": {}, "latency": {}, "llm": {}, "machine": {"cpus": os.cpu_count(),
                                                                            "load_1min": os.getloadavg()[0]}}
        with run.progress("throughput", total=len(tasks) * 3 * args.repeats) as bar:
            for task in tasks:
                row = {}
                for side in ("ours", "browsergym", "browsergym-fast"):
                    runs = []
                    for _ in range(args.repeats):
                        r = _child([side, task, str(args.steps)], timeout=900)
                        if "error" in r:
                            row[side] = r
                            break
                        runs.append(r["steps_per_s"])
                        bar.advance()
                    if runs:
                        row[side] = {"steps_per_s": statistics.median(runs), "runs": runs}
                res["throughput"][task] = row
                print(task, {k: round(v.get("steps_per_s", float("nan")), 2) for k, v in row.items()}, flush=True)
        for policy in ("rule", "proposal"):
            res["latency"][policy] = _child(["latency", policy, str(n_policy_tasks)], timeout=1800)
            print(policy, res["latency"][policy], flush=True)
        if args.llm_seeds:
            for mode in ("constrained", "free"):
                res["llm"][mode] = _child(["llm", mode, str(args.llm_seeds)], timeout=3600)
                print(mode, res["llm"][mode], flush=True)
        ours = [v["ours"]["steps_per_s"] for v in res["throughput"].values() if "steps_per_s" in v.get("ours", {})]
        bg = [v["browsergym"]["steps_per_s"] for v in res["throughput"].values()
              if "steps_per_s" in v.get("browsergym", {})]
        bgf = [v["browsergym-fast"]["steps_per_s"] for v in res["throughput"].values()
               if "steps_per_s" in v.get("browsergym-fast", {})]
        metrics = {"ours_steps_per_s": statistics.mean(ours) if ours else None,
                   "browsergym_steps_per_s": statistics.mean(bg) if bg else None,
                   "browsergym_fast_steps_per_s": statistics.mean(bgf) if bgf else None}
        for policy, lat in res["latency"].items():
            if "median_s" in lat:
                metrics[f"{policy}_median_step_ms"] = 1000 * lat["median_s"]
                metrics[f"{policy}_p90_step_ms"] = 1000 * lat["p90_s"]
        for mode, llm in res["llm"].items():
            if "invalid_rate" in llm:
                metrics[f"smollm2_{mode}_invalid_rate"] = llm["invalid_rate"]
                metrics[f"smollm2_{mode}_success_rate"] = llm["success_rate"]
        res["summary"] = metrics
        run.set_metrics(**{k: v for k, v in metrics.items() if v is not None})
        name = "gui_quick" if args.quick else "gui"
        path = run.write_json(f"{name}.json", res)
        png = run.figure(f"{name}.png")
        _plot(res, png)
        if args.save:
            RESULTS.mkdir(exist_ok=True)
            shutil.copy(path, RESULTS / f"{name}.json")
            shutil.copy(png, RESULTS / f"{name}.png")
        print(json.dumps(metrics, indent=1))
        print(f"wrote {path} and {png}")


def _plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    tasks = list(res["throughput"])
    sides = ["ours", "browsergym", "browsergym-fast"]
    for i, side in enumerate(sides):
        vals = [res["throughput"][t].get(side, {}).get("steps_per_s", 0) for t in tasks]
        axes[0].bar([j + 0.27 * i for j in range(len(tasks))], vals, width=0.27, label=side)
    axes[0].set_xticks([j + 0.27 for j in range(len(tasks))])
    axes[0].set_xticklabels(tasks, fontsize=7)
    axes[0].set_ylabel("steps / s (act + observe), one core")
    axes[0].legend(fontsize=7)
    lat = {p: v for p, v in res["latency"].items() if "median_s" in v}
    axes[1].bar(list(lat), [1000 * v["median_s"] for v in lat.values()], label="median")
    axes[1].bar(list(lat), [1000 * (v["p90_s"] - v["median_s"]) for v in lat.values()],
                bottom=[1000 * v["median_s"] for v in lat.values()], alpha=0.4, label="to p90")
    axes[1].axhline(300, color="r", ls="--", label="300 ms target")
    axes[1].set_ylabel("ms per governed step")
    axes[1].legend(fontsize=7)
    llm = {m: v for m, v in res["llm"].items() if "invalid_rate" in v}
    if llm:
        xs = list(llm)
        axes[2].bar([x + "\ninvalid" for x in xs], [100 * llm[x]["invalid_rate"] for x in xs], color="#b33")
        axes[2].bar([x + "\nsuccess" for x in xs], [100 * llm[x]["success_rate"] for x in xs], color="#2d5b88")
        axes[2].set_ylabel("% (SmolLM2-135M, axtree-json policy)")
    else:
        axes[2].set_title("SmolLM2 runs skipped (--llm-seeds 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
