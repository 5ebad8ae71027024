"""Report section for GUI-Owl-1.5 / Mobile-Agent-v3.5 (arXiv 2602.16855): the protocol, the environments
and the suites, measured with the non-LLM policies (the model's weights cannot be obtained offline).

The jobs are runs of :func:`parsimon.gui.evaluate.evaluate` under ``<out>/runs/``; the tables are built
from their ``results.json``. Quick mode: the first 40 DOM-solvable MiniWoB++ tasks (alphabetical, with
or without a rule) x 1 seed for the rule and proposal policies, one apps slot per app and length (29
synthesized tasks) for the rule policy and the 10 of 1-2 steps for the proposal policy, two phone and two
desktop tasks, roles on/off on 6 MiniWoB tasks,
a BrowserGym parity check on 3 episodes, and one filmstrip. ``--full``: every DOM-solvable task x 10
seeds, all 232 apps slots x 2 seeds, more phone, desktop and parity episodes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsimon.report.section import Claim, Figure, ReproContext, Section, Table

__all__ = ["FULL", "PAPER", "QUICK", "Settings", "reproduce"]

PAPER = "Mobile-Agent-v3.5: Multi-platform Fundamental GUI Agents (GUI-Owl-1.5, arXiv 2602.16855)"

# Paper (abstract and the official README): the best GUI-Owl-1.5 model's score per benchmark.
PAPER_SCORES = {"OSWorld-Verified": "56.5 (32B-Instruct)", "AndroidWorld": "71.6 (8B-Thinking)",
                "WebArena": "48.4 (32B-Thinking)", "OSWorld-MCP": "47.6 (32B-Instruct)",
                "MobileWorld": "46.8 (32B-Instruct)", "ScreenSpot-Pro": "80.3"}


@dataclass(frozen=True)
class Settings:
    """How much the section runs."""

    miniwob_tasks: int  # the first N DOM-solvable tasks, alphabetical (0: all)
    miniwob_seeds: tuple[int, ...]
    apps_per_length: int  # slots per (app, length)
    apps_seeds: tuple[int, ...]
    mobile: tuple[str, ...]
    desktop: tuple[str, ...]
    roles_tasks: int
    parity: tuple[tuple[str, int, str], ...]  # (task, seed, policy)
    apps: tuple[str, ...] = ("todo", "inbox", "settings", "table", "checkout")  # apps in the apps table
    proposal_max_len: int = 6  # the proposal policy runs the apps tasks up to this many steps


QUICK = Settings(40, (0,), 1, (0,), ("todo-L3-0", "inbox-L3-1"), ("notes-L3-0", "notes-L5-1"), 6,
                 (("click-button", 0, "rule"), ("enter-text", 1, "rule"), ("click-checkboxes", 2, "random")),
                 proposal_max_len=2)
FULL = Settings(0, tuple(range(10)), 8, (0, 1), tuple(f"{a}-L{n}-0" for a in ("todo", "inbox", "settings", "table",
                                                                                "checkout") for n in (2, 4)),
                tuple(f"notes-L{n}-{k}" for n in (2, 3, 4, 5) for k in range(3)), 40,
                tuple((t, s, p) for t in ("click-button", "enter-text", "click-checkboxes", "click-link", "login-user")
                      for s in (0, 1, 2) for p in ("rule", "random")))


def _eval(ctx: ReproContext, name: str, **cfg: Any) -> dict:
    from parsimon.gui.evaluate import EvalConfig, evaluate

    out = ctx.out_dir / "runs" / name
    with ctx.progress(f"gui: {name}"):
        res = evaluate(EvalConfig(**cfg), out_dir=out, resume=True, progress=False, seed=ctx.seed)
    return json.loads((Path(res.run_dir) / "results.json").read_text())


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(row: dict) -> str:
    return f"{_pct(row['success_rate'])} [{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]"


def _codec_round_trips(n: int, seed: int) -> tuple[int, int]:
    """Random valid tool calls of every platform through decode then encode; (ok, total)."""
    from parsimon.gui.codecs import decode, encode
    from parsimon.gui.tools import ACTION_ARGS

    rng = random.Random(seed)
    values = {"coordinate": lambda: [rng.randint(0, 1000), rng.randint(0, 1000)],
              "coordinate2": lambda: [rng.randint(0, 1000), rng.randint(0, 1000)],
              "keys": lambda: rng.sample(["ctrl", "shift", "a", "Enter", "tab"], rng.randint(1, 3)),
              "text": lambda: rng.choice(["hello", "Ünïcode ✓", "a b", "42"]), "pixels": lambda: rng.randint(-900, 900),
              "time": lambda: rng.choice([0, 0.5, 2, 5]), "status": lambda: rng.choice(["success", "failure"]),
              "button": lambda: rng.choice(["Back", "Home", "Menu", "Enter"]),
              "label": lambda: rng.choice([rng.randint(0, 300), str(rng.randint(0, 300))]),
              "direction": lambda: rng.choice(["up", "down"]), "option": lambda: rng.choice(["Red", "5ft 10in"])}
    ok = total = 0
    for _ in range(n):
        platform = rng.choice(sorted(ACTION_ARGS))
        name = rng.choice(sorted(ACTION_ARGS[platform]))
        required, optional = ACTION_ARGS[platform][name]
        args = {"action": name, **{k: values[k]() for k in required}}
        args.update({k: ("WINDOW" if k == "label" and rng.random() < 0.5 else values[k]()) for k in optional
                     if rng.random() < 0.5})
        total += 1
        ok += encode(platform, decode(platform, args)) == args
    return ok, total


def _filmstrip(ctx: ReproContext) -> Figure:
    from parsimon.gui.agent import run_episode
    from parsimon.gui.filmstrip import filmstrip
    from parsimon.gui.policies.rule import RulePolicy
    from parsimon.gui.suites.apps import AppTask
    from parsimon.gui.transitions import TransitionRecorder, read_transitions
    from parsimon.gui.web.env import BrowserEnv

    root = ctx.out_dir / "filmstrip"
    env = BrowserEnv(observe_dom=False)
    try:
        res = run_episode(env, RulePolicy(), AppTask("todo-L3-1", mobile=True), 0, recorder=TransitionRecorder(root))
    finally:
        env.close()
    trs = read_transitions(root)
    frames = [((root / t["state"]["screenshot"]).read_bytes(), _describe(t["action"])) for t in trs]
    frames.append(((root / trs[-1]["next_state"]["screenshot"]).read_bytes(),
                   "solved" if res.success else "not solved"))
    path = filmstrip(frames, ctx.path("filmstrip.png"), height=300)
    return Figure(path, f"A phone episode of the mobile suite, step by step (rule policy): \"{res.goal}\" "
                        f"({res.steps} actions; {'solved' if res.success else 'not solved'}).")


def _describe(action: dict | None) -> str:
    from parsimon.gui.actions import Action

    return "—" if action is None else Action.from_dict(action).describe()


def reproduce(ctx: ReproContext) -> Section:
    """Run the jobs of the module docstring and build the section from their results."""
    from parsimon.gui.evaluate import resolve_tasks
    from parsimon.gui.suites.apps import slot_names

    s = FULL if ctx.full else QUICK
    section = Section(name="gui", paper=PAPER, config={k: v for k, v in s.__dict__.items()},
                      summary="GUI-Owl-1.5's protocol (tool schemas, prompt, reply parsing, 0-1000 coordinates) "
                              "over real environments: Chromium through Playwright on MiniWoB++ and our five apps, "
                              "the same apps on an emulated phone, and a Tk app on an X display. The model itself "
                              "is not available offline, so the success tables use the rule policy (hand-written "
                              "DOM rules and the apps' instruction grammar) and the proposal policy (candidates "
                              "from the page ranked by overlap with the instruction).")
    ok, total = _codec_round_trips(5000, ctx.seed)
    from parsimon.gui.tools import OFFICIAL_PROMPT_SHA256, prompt_sha256

    exact = sum(prompt_sha256(p) == h for p, h in OFFICIAL_PROMPT_SHA256.items())
    section.claims.append(Claim("The unified action space maps every action of computer_use, mobile_use and "
                                "browser_use losslessly", "a unified action space (paper, Section 3)",
                                f"{ok}/{total} random valid calls survive decode then encode; system prompts "
                                f"byte-exact for {exact}/3 platforms", ok == total and exact == 3,
                                note="Property tests in tests/gui/test_codecs.py cover both directions."))
    dom = resolve_tasks("miniwob", "dom")
    tasks = dom if not s.miniwob_tasks else dom[: s.miniwob_tasks]
    mw = {p: _eval(ctx, f"miniwob-{p}", suite="miniwob", tasks=tasks, seeds=s.miniwob_seeds, policy=p)
          for p in ("rule", "proposal")}
    rows = [[t.split("/", 1)[1], _ci(mw["rule"]["per_task"][t]), _ci(mw["proposal"]["per_task"][t])]
            for t in mw["rule"]["per_task"]]
    over = {p: mw[p]["overall"] for p in mw}
    rows.insert(0, ["all tasks", f"{_pct(over['rule']['success_rate'])} [{_pct(over['rule']['success_ci'][0])}, "
                    f"{_pct(over['rule']['success_ci'][1])}]",
                    f"{_pct(over['proposal']['success_rate'])} [{_pct(over['proposal']['success_ci'][0])}, "
                    f"{_pct(over['proposal']['success_ci'][1])}]"])
    mode = "quick mode: 1 seed per task" if not ctx.full else "10 seeds per task"
    section.tables.append(Table(
        f"MiniWoB++: success on {len(tasks)} DOM-solvable tasks ({mode}; 95% bootstrap CI)",
        ["task", "rule policy", "proposal policy"], rows,
        note=f"{len(dom)} of 130 tasks are DOM-solvable; the other {130 - len(dom)} need pixels, shapes, drawing or "
             "timing (listed as VISUAL_TASKS). Tasks are taken in alphabetical order whether or not the rule policy "
             f"has a rule for them. Mean time per step: rule {1000 * over['rule']['seconds_per_step']:.0f} ms, "
             f"proposal {1000 * over['proposal']['seconds_per_step']:.0f} ms (decide, act, observe, log)."))
    slots = [n for n in slot_names() if int(n.rsplit("-", 1)[1]) < s.apps_per_length and n.split("-")[0] in s.apps]
    # the proposal policy stops after 16 actions (a synthesized task needs at most 4 per step for the rule)
    short = tuple(n for n in slots if int(n.split("-L")[1].split("-")[0]) <= s.proposal_max_len)
    ap = {"rule": _eval(ctx, "apps-rule", suite="apps", tasks=tuple(slots), seeds=s.apps_seeds, policy="rule",
                        approve="auto"),
          "proposal": _eval(ctx, "apps-proposal", suite="apps", tasks=short, seeds=s.apps_seeds, policy="proposal",
                            approve="auto", max_steps=16)}
    app_rows = []
    for app in s.apps:
        for n in range(1, 7):
            keys = [k for k in ap["rule"]["per_task"] if k.startswith(f"apps/{app}-L{n}-")]
            if not keys:
                continue
            r = [ap["rule"]["per_task"][k]["success_rate"] for k in keys]
            q = [ap["proposal"]["per_task"][k]["success_rate"] for k in keys if k in ap["proposal"]["per_task"]]
            st = [ap["rule"]["per_task"][k]["mean_steps"] for k in keys]
            app_rows.append([app, n, len(keys) * len(s.apps_seeds), _pct(sum(r) / len(r)),
                             _pct(sum(q) / len(q)) if q else "not run", f"{sum(st) / len(st):.1f}"])
    extra = {"mobile": _eval(ctx, "mobile-rule", suite="mobile", tasks=s.mobile, seeds=(0,), policy="rule"),
             "desktop": _eval(ctx, "desktop-rule", suite="desktop", tasks=s.desktop, seeds=(0,), policy="rule")}
    for suite, res in extra.items():
        o = res["overall"]
        names = s.mobile if suite == "mobile" else s.desktop
        lengths = sorted({int(n.split("-L")[1].split("-")[0]) for n in names})
        app_rows.append([f"{suite} (rule)", ", ".join(map(str, lengths)), o["episodes"], _pct(o["success_rate"]), "–",
                         f"{o['mean_steps']:.1f}"])
    section.tables.append(Table(
        f"Our apps: {len(slots) * len(s.apps_seeds)} DAG-synthesized tasks"
        f"{' (quick mode: one slot per app and length; the proposal policy on tasks of 1-2 steps)' if not ctx.full else ''}"
        ", plus phone and X-desktop runs",
        ["app", "steps in task", "episodes", "rule policy", "proposal policy", "rule: actions per episode"], app_rows,
        note="Tasks come from atomic operations with pre- and post-conditions sampled as a walk over a dependency "
             f"DAG ({len(slot_names())} slots of lengths 1-6, each seed a different instance); success is the "
             "check(goal, state) oracle on the app's real state. The phone rows start on the home screen and use "
             "long presses and swipes. Irreversible 'Pay now' is escalated; these runs "
             "approve it automatically (--approve auto), which is recorded in the proof-of-action log."))
    # spread over the alphabet (the first tasks alphabetically are the hardest: book-flight, choose-date)
    roles_tasks = dom[:: max(1, len(dom) // s.roles_tasks)][: s.roles_tasks]
    ro = {r: _eval(ctx, f"roles-{'on' if r else 'off'}", suite="miniwob", tasks=roles_tasks, seeds=(0,),
                   policy="proposal", roles=r) for r in (False, True)}
    section.tables.append(Table(
        "Mobile-Agent roles (manager, reflector, notetaker around the proposal policy), off and on",
        ["roles", "success", "mean actions", "ms per step"],
        [["off" if not r else "on", _pct(ro[r]["overall"]["success_rate"]), f"{ro[r]['overall']['mean_steps']:.1f}",
          f"{1000 * ro[r]['overall']['seconds_per_step']:.0f}"] for r in (False, True)],
        note=f"{len(roles_tasks)} MiniWoB++ tasks x 1 seed ({', '.join(t for t in roles_tasks)}). The roles are "
             "computed (reflector: screen and element table before and after), not prompted."))
    section.tables.append(_parity(ctx, s, section))
    section.figures.append(_filmstrip(ctx))
    for bench, score in PAPER_SCORES.items():
        section.claims.append(Claim(f"GUI-Owl-1.5 on {bench}", score, "not run", None,
                                    note="needs the GUI-Owl weights (serve them with vLLM and use --policy guiowl "
                                         "--base-url ...) and the benchmark's own environment"))
    section.not_reproduced += [
        "GUI-Owl-1.5's benchmark scores: the weights cannot be downloaded here; the guiowl policy is tested for "
        "protocol correctness against a scripted endpoint only.",
        "The paper's training (hybrid data flywheel, MRPO reinforcement learning) is out of scope.",
        "The DAG-based task synthesis is our reading of the paper's summary (its construction is not public).",
    ]
    from parsimon.gui.world_model.reproduce_part import extend_section, world_model_part

    section.paper = f"{PAPER} and Computer-Using World Model (arXiv 2602.17365)"
    return extend_section(section, world_model_part(ctx))


def _parity(ctx: ReproContext, s: Settings, section: Section) -> Table:
    from parsimon.gui.peers import crosscheck

    rows = []
    for policy in sorted({p for _, _, p in s.parity}):
        picks = [(t, seed) for t, seed, p in s.parity if p == policy]
        for t, seed in picks:
            with ctx.progress(f"gui: BrowserGym parity {t}"):
                rows += crosscheck([t], [seed], policy=policy)
    agree = sum(r["agree"] for r in rows)
    section.claims.append(Claim("The same inputs give the same reward as BrowserGym's browsergym-miniwob on the "
                                "same pages and Chromium", "(peer check; not a paper claim)",
                                f"{agree}/{len(rows)} episodes agree", agree == len(rows) and bool(rows)))
    ctx.path("parity.json").write_text(json.dumps(rows, indent=1))
    return Table("BrowserGym parity: raw rewards for the same input events",
                 ["task", "seed", "actions", "ours", "BrowserGym", "agree"],
                 [[r["task"], r["seed"], r["actions"], r["ours_raw_reward"], r["browsergym_raw_reward"],
                   "yes" if r["agree"] else "NO"] for r in rows],
                 note="Our actions' screen points and keystrokes replayed with BrowserGym's coordinate actions; the "
                      "random policy supplies failing episodes (raw reward below 0).")
