"""Computer-Using World Model benchmark: world-model accuracy, render fidelity, search success and speed.

Phases (each timed, all in one run folder):

1. data: the transition store. ``--store DIR`` reuses one; otherwise the rule, proposal and random
   policies play the MiniWoB rule tasks and the apps (one- to three-operation slots 0-1) on seeds 100-101
   (``--store-seeds`` for more) into ``<run>/store`` (the flywheel's collection);
2. accuracy (``gui wm eval``): 30% of the tasks held out; delta precision / recall / F1 / exact match on
   real changes, no-op accuracy and calibration for no-change, rule and learned; the oracle on a
   sample of replays; render fidelity (SSIM, PSNR, mismatching pixels) on a sample; the learning curve;
3. models: the learned world model and the value function fit on the whole store;
4. search: the proposal policy alone and searched (none / text / render / text+render, K in {3, 5},
   learned and oracle world models) on the MiniWoB task list (31 tasks, seeds 0-2) and the apps task
   list (18 tasks, seeds 0-4: about 90 episodes per row on either suite; the oracle on seeds 0-1,
   ``--oracle-seeds`` for more);
   first, one searched round of the flywheel: the learned text search plays both task lists on the
   store's seeds 100-103 and logs its episodes, a second value function is fit whose done model also
   learned from them, and the row "learned text K=5 +done" searches with it and the done check
   (``SearchConfig.done_check`` 0.5, the search's default; ``derived_done_check`` holds its lifts,
   against "oracle text K=5 +done" on the apps, seeds 0-1; on MiniWoB, where an episode ends when
   solved, against the oracle), and "learned text+render K=5 +done" the same with rendered predictions
   (``derived_done_check_render``); every other searched row runs with the done check off;
5. CUWM's offline metric: single-step action match against logged expert (rule policy) steps on the
   evaluation seeds, and candidate coverage;
6. speed: one search step (observe, propose 5, imagine 5, score, act) with the learned model, from the
   searched episodes' step records (median; one thread);
7. a filmstrip: one episode with real and imagined screenshots.

Writes ``wm_bench.json``, ``wm_bench.png`` and ``wm_filmstrip.png`` to the run folder (``--out``, default
``runs/wm-bench-<UTC stamp>``); ``--save`` also writes them to ``benchmarks/results/``. ``--quick`` runs
a small version of everything (minutes). Machines here are shared 2-core boxes: timings are noisy.
``--store-seeds-from S`` and ``--eval-seeds-from E`` move the two seed ranges (defaults 100 and 0): a
run on fresh seeds of both checks that a change written from one run's misses holds on episodes it
has not seen.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outputs import add_output_options, open_run, write_results  # noqa: E402

from parsimon.gui.world_model.search import DEFAULT_DONE_CHECK as DONE_CHECK  # noqa: E402

QUICK_MINIWOB = ("click-checkboxes", "click-collapsible", "click-tab-2", "enter-text", "login-user", "click-option")
QUICK_APPS = ("todo-L1-0", "inbox-L1-0", "settings-L2-0", "checkout-L1-0")


def collect_store(root: Path, quick: bool, log, first: int = 100, n_seeds: int = 2) -> None:
    from parsimon.gui.policies.miniwob_rules import RULES
    from parsimon.gui.world_model.collect import CollectConfig, collect

    mw = QUICK_MINIWOB if quick else tuple(sorted(RULES))
    apps = QUICK_APPS if quick else tuple(f"{a}-L{n}-{k}" for a in ("todo", "inbox", "settings", "table", "checkout")
                                          for n in (1, 2, 3) for k in (0, 1) if not (a == "settings" and n == 1))
    for suite, tasks in (("miniwob", mw), ("apps", apps)):
        t0 = time.perf_counter()
        seeds = tuple(range(first, first + (1 if quick else n_seeds)))
        res = collect(CollectConfig(suite=suite, tasks=tasks, seeds=seeds, max_steps=8),
                      root, out_dir=root.parent / f"collect-{suite}", progress=False)
        log(f"collected {res['transitions']} {suite} transitions in {time.perf_counter() - t0:.0f} s "
            f"(success {res['success_rate']})")


def accuracy(store: Path, quick: bool, run_dir: Path, log) -> dict:
    from parsimon.gui.world_model.evaluate import WMEvalConfig, evaluate_world_models

    cfg = WMEvalConfig(store=(str(store),), models=("rule", "learned", "oracle"), test_fraction=0.3,
                       render_samples=12 if quick else 60, oracle_samples=6 if quick else 40,
                       curve=(25, 100, 400) if quick else (25, 50, 100, 200, 400, 800, 1600))
    res = evaluate_world_models(cfg, out_dir=run_dir / "wm-eval", progress=False)
    log(f"accuracy: {[(k, round(v['f1'], 3)) for k, v in res['models'].items()]}")
    return res


def fit_models(store: Path, folder: Path, log) -> tuple[str, str]:
    from parsimon.gui.world_model.train import train

    res = train([str(store)], model_dir=folder, out_dir=folder.parent / "train", progress=False)
    log(f"trained on {res['transitions']} transitions ({res['effects']} effects)")
    return res["model"], res["value"]


ROUND_SEEDS = 4  # the searched round plays the store's first seed and the three after it (100-103 by default)
CHECKED = "learned text K=5 +done"  # the row searched with the done check
CHECKED_ORACLE = "oracle text K=5 +done"  # the oracle with the same scorer (apps only)
CHECKED_RENDER = "learned text+render K=5 +done"  # the checked row with rendered predictions too


def derived_checked(table: dict) -> dict:
    """``derived_done_check`` (and ``derived_done_check_render``) of a search table: the rows with the done
    check against the oracle with the same check where it ran, else against the oracle without it."""
    from parsimon.gui.world_model.experiments import derived

    oracle = CHECKED_ORACLE if CHECKED_ORACLE in table else "oracle text K=5"
    return {key: derived(table, learned=row, oracle=oracle)
            for key, row in (("derived_done_check", CHECKED), ("derived_done_check_render", CHECKED_RENDER))
            if row in table}


def searched_round(quick: bool, learned: str, value_path: str, store: Path, folder: Path, log,
                   first: int = 100) -> str:
    """One searched round of the flywheel on ``ROUND_SEEDS`` seeds from ``first`` (see
    ``experiments.searched_round``); returns a value function fit on ``store`` whose done model also
    learned from it (the progress models do not: see ``ValueFunction.fit``)."""
    from parsimon.gui.world_model.experiments import searched_round as play_round
    from parsimon.gui.world_model.store import TransitionStore
    from parsimon.gui.world_model.value import ValueFunction

    seeds = list(range(first, first + (1 if quick else ROUND_SEEDS)))
    searched = play_round(folder, seeds, value=ValueFunction(value_path), learned_path=learned, log=log,
                          tasks={"miniwob": QUICK_MINIWOB, "apps": QUICK_APPS} if quick else None)
    vf = ValueFunction.fit(TransitionStore(store).transitions(screenshots=True), done_transitions=searched)
    log(f"value function with the round's {len(searched)} transitions in its done model "
        f"({vf.state['done_positive']} of {vf.state['done_rows']} done)")
    return str(vf.save(folder.parent / "models" / "value-done.pkl"))


def search(quick: bool, learned: str, value_path: str, log, n_seeds: int | None = None,
           done_value_path: str = "", first: int = 0, render: bool = True, n_oracle: int = 2) -> dict:
    from parsimon.gui.world_model.experiments import (
        APPS_SEARCH_TASKS,
        MINIWOB_SEARCH_TASKS,
        SearchSpec,
        derived,
        search_table,
    )
    from parsimon.gui.world_model.value import ValueFunction

    value = ValueFunction(value_path)
    out = {}
    # seeds per suite: about 90 episodes per row on either (31 MiniWoB tasks x 3, 18 apps tasks x 5)
    for suite, tasks, max_steps, n_default in (("miniwob", QUICK_MINIWOB if quick else MINIWOB_SEARCH_TASKS, 10, 3),
                                               ("apps", QUICK_APPS if quick else APPS_SEARCH_TASKS, 12, 5)):
        seeds = list(range(first, first + (n_seeds if n_seeds is not None else 1 if quick else n_default)))
        oracle_seeds = None if suite == "miniwob" or quick else tuple(seeds[:n_oracle])  # the oracle is slow
        specs = [SearchSpec("proposal"), SearchSpec("none K=5", None, 5, "none"),
                 SearchSpec("learned text K=5", "learned", 5, "text")]
        if suite == "miniwob":
            specs[1:1] = [SearchSpec("none K=3", None, 3, "none")]
            specs += [SearchSpec("learned text K=3", "learned", 3, "text")]
            if render:
                specs += [SearchSpec("learned render K=5", "learned", 5, "render"),
                          SearchSpec("learned text+render K=5", "learned", 5, "text+render")]
        specs.append(SearchSpec("oracle text K=5", "oracle", 5, "text", seeds=oracle_seeds))
        t0 = time.perf_counter()
        table = search_table(suite, list(tasks), seeds, specs, value=value, learned_path=learned,
                             max_steps=max_steps)
        if done_value_path:
            checked = [SearchSpec(CHECKED, "learned", 5, "text", done_check=DONE_CHECK)]
            if render:
                checked.append(SearchSpec(CHECKED_RENDER, "learned", 5, "text+render", done_check=DONE_CHECK))
            if suite == "apps":  # on MiniWoB an episode ends when solved: the done check never fired there
                checked.append(SearchSpec(CHECKED_ORACLE, "oracle", 5, "text", done_check=DONE_CHECK,
                                          seeds=oracle_seeds))
            table.update(search_table(suite, list(tasks), seeds, checked, value=ValueFunction(done_value_path),
                                      learned_path=learned, max_steps=max_steps))
        out[suite] = {"tasks": list(tasks), "seeds": seeds, "max_steps": max_steps, "table": table,
                      "derived": derived(table), "seconds": time.perf_counter() - t0}
        out[suite].update(derived_checked(table))
        log(f"search {suite}: " + ", ".join(f"{k} {v['success_rate']:.3f}" for k, v in table.items())
            + f"; {out[suite]['derived']}")
    return out


def offline(store_root: Path, quick: bool, learned: str, value_path: str, run_dir: Path, log,
            first: int = 0) -> dict:
    """Expert (rule) episodes on the evaluation seeds, then CUWM's single-step match."""
    from parsimon.gui.evaluate import make_policy
    from parsimon.gui.transitions import TransitionRecorder
    from parsimon.gui.world_model.collect import run_episodes
    from parsimon.gui.world_model.experiments import MINIWOB_SEARCH_TASKS, offline_match
    from parsimon.gui.world_model.learned import LearnedWorldModel
    from parsimon.gui.world_model.store import TransitionStore
    from parsimon.gui.world_model.value import ValueFunction, _episodes

    folder = run_dir / "expert"
    rec = TransitionRecorder(folder)
    tasks = QUICK_MINIWOB if quick else MINIWOB_SEARCH_TASKS
    seeds = tuple(range(first, first + (1 if quick else 3)))
    rule = make_policy("rule")
    results = run_episodes("miniwob", [(t, s, rule) for t in tasks for s in seeds], recorder=rec, max_steps=10)
    episodes = [ep for ep in _episodes(TransitionStore(folder).transitions())
                if any(t.success for t in ep)]
    from parsimon.gui.world_model.oracle import OracleWorldModel

    oracle = OracleWorldModel(screenshots=False)
    try:
        out = offline_match(episodes, {"learned": LearnedWorldModel(learned), "oracle": oracle},
                            ValueFunction(value_path), k=5, oracle_steps=8 if quick else 60)
    finally:
        oracle.close()
    out["expert_success"] = sum(r.success for r in results) / max(len(results), 1)
    log(f"offline action match: {out}")
    return out


def speed(search_res: dict) -> dict:
    row = search_res["miniwob"]["table"]["learned text K=5"]
    base = search_res["miniwob"]["table"]["proposal"]
    return {"search_step_s_median": row["step_s_median"], "search_decide_s_median": row["decide_s_median"],
            "imagine_5_s_median": row["imagine_s_median"], "proposal_step_s_median": base["step_s_median"],
            "render_step_s_median": search_res["miniwob"]["table"].get("learned render K=5", {}).get("step_s_median")}


def filmstrip_png(path: Path, frames: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    n = max(len(frames), 1)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for i, f in enumerate(frames):
        for j, (key, title) in enumerate((("before", "before"), ("imagined", "imagined (learned, rendered)"),
                                          ("real", "real after"))):
            ax = axes[i][j]
            ax.axis("off")
            if f.get(key):
                ax.imshow(Image.open(io.BytesIO(f[key])).convert("RGB"))
            ax.set_title(title if i == 0 else "", fontsize=8)
        axes[i][0].text(0, -8, f"step {i + 1}: {f['action']}", fontsize=7)
    if frames:
        fig.suptitle(frames[0]["goal"][:90], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(path: Path, data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    width = 0.4
    order: list[str] = []  # every row name once, so that each suite's bar sits over its own label
    for res in data.get("search", {}).values():
        order += [k for k in res["table"] if k not in order]
    for s, (suite, res) in enumerate(data.get("search", {}).items()):
        labels = list(res["table"])
        rates = [res["table"][k]["success_rate"] for k in labels]
        err = [[r - res["table"][k]["ci_low"] for k, r in zip(labels, rates, strict=True)],
               [res["table"][k]["ci_high"] - r for k, r in zip(labels, rates, strict=True)]]
        xs = [order.index(k) + s * width for k in labels]
        ax.bar(xs, rates, width, yerr=err, capsize=2, label=suite)
    if order:
        ax.set_xticks([i + width / 2 for i in range(len(order))])
        ax.set_xticklabels(order, rotation=60, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_title("proposal policy with and without search")
    acc = data.get("accuracy", {})
    ax = axes[1]
    pts = acc.get("learning_curve") or []
    if pts:
        ax.plot([p["transitions"] for p in pts], [p["f1"] for p in pts], "o-", label="learned: delta F1")
        ax.plot([p["transitions"] for p in pts], [p["exact_real"] for p in pts], "s--", label="learned: exact")
        for name, style in (("rule", ":"), ("no-change", "-.")):
            if name in acc.get("models", {}):
                ax.axhline(acc["models"][name]["f1"], ls=style, color="gray", label=f"{name}: delta F1")
        ax.set_xscale("log")
    ax.set_xlabel("training transitions (flywheel)")
    ax.set_ylim(0, 1.02)
    ax.set_title("held-out tasks: learning curve")
    if pts:
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, r in acc.get("models", {}).items():
        bins = r.get("reliability") or []
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=f"{name} (ECE "
                    f"{r['ece']:.2f})")
    ax.plot([0, 1], [0, 1], ":", color="gray")
    ax.set_xlabel("confidence")
    ax.set_ylabel("exact-match rate")
    ax.set_title("calibration")
    if acc.get("models"):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rederive(path: Path, ap: argparse.ArgumentParser) -> None:
    """Recompute ``search.<suite>.derived`` of a saved result from its tables (no episode is played)."""
    import json

    from parsimon.gui.world_model.experiments import derived

    try:
        data = json.loads(path.read_text())
        suites = data["search"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        ap.error(f"--rederive: {path} is not a saved wm_bench.json with a search section ({exc})")
    for suite, res in suites.items():
        res["derived"] = derived(res["table"])
        res.update(derived_checked(res["table"]))
        print(f"{suite}: {res['derived']}", flush=True)
    path.write_text(json.dumps(data, indent=1))
    plot(path.with_suffix(".png"), data)
    print(f"rewrote {path} (.png)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=None, help="an existing transition store (skips collection)")
    ap.add_argument("--quick", action="store_true", help="a small version of every phase (minutes)")
    ap.add_argument("--search-seeds", type=int, default=None, metavar="N",
                    help="seeds per task in the search phase, both suites (default: MiniWoB 3, apps 5; "
                         "1 with --quick)")
    ap.add_argument("--oracle-seeds", type=int, default=2, metavar="N",
                    help="seeds per task of the apps' oracle rows, the first N of the search seeds (default 2; "
                         "the oracle replays every candidate in a scratch page, some 20 times slower)")
    ap.add_argument("--store-seeds-from", type=int, default=100, metavar="S",
                    help="first seed of the collection (S, S+1, ...) and of the searched round (S to S+3); "
                         "default 100")
    ap.add_argument("--store-seeds", type=int, default=2, metavar="N",
                    help="seeds per task of the collection (default 2: S and S+1)")
    ap.add_argument("--eval-seeds-from", type=int, default=0, metavar="E",
                    help="first evaluation seed of the search and offline phases (E, E+1, ...); default 0. "
                         "Keep the two ranges apart")
    ap.add_argument("--no-render", action="store_true",
                    help="leave out the search rows that render their predictions (render, text+render), the slowest")
    ap.add_argument("--skip", default="", help="phases to skip, comma-separated: accuracy,search,offline,filmstrip")
    ap.add_argument("--rederive", type=Path, default=None, metavar="JSON",
                    help="run nothing: recompute the derived search metrics (lifts, their paired intervals, the "
                         "gain at equal K) of a saved wm_bench.json from its episode outcomes, rewrite it in "
                         "place and redraw the plot beside it")
    add_output_options(ap, "wm-bench")
    args = ap.parse_args()
    if args.rederive is not None:
        rederive(args.rederive, ap)
        return
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.search_seeds is not None and args.search_seeds < 1:
        ap.error(f"--search-seeds must be >= 1, got {args.search_seeds}")
    for name in ("store_seeds_from", "eval_seeds_from"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.oracle_seeds < 1:
        ap.error(f"--oracle-seeds must be >= 1, got {args.oracle_seeds}")
    if args.store_seeds < 1:
        ap.error(f"--store-seeds must be >= 1, got {args.store_seeds}")
    n_eval = max(args.search_seeds or 5, 3)
    n_store = max(args.store_seeds, ROUND_SEEDS)
    if args.eval_seeds_from < args.store_seeds_from + n_store and args.store_seeds_from < args.eval_seeds_from + n_eval:
        ap.error(f"--eval-seeds-from {args.eval_seeds_from}: the evaluation seeds overlap the store's "
                 f"({args.store_seeds_from}-{args.store_seeds_from + n_store - 1})")
    import torch  # noqa: F401 - pins one thread for anything that uses it

    torch.set_num_threads(1)
    data: dict = {"quick": args.quick, "phases_s": {}}
    with open_run("wm-bench", args) as run:
        def log(msg: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
            run.log(message=msg)

        def phase(name: str, fn, *a):
            t0 = time.perf_counter()
            out = fn(*a)
            data["phases_s"][name] = time.perf_counter() - t0
            return out

        store = args.store or run.dir / "store"
        if args.store is None:
            phase("collect", collect_store, store, args.quick, log, args.store_seeds_from,
                  args.store_seeds)
        from parsimon.gui.world_model.store import TransitionStore

        data["store"] = {"path": str(store), "transitions": len(TransitionStore(store))}
        if "accuracy" not in skip:
            acc = phase("accuracy", accuracy, store, args.quick, run.dir, log)
            data["accuracy"] = {k: v for k, v in acc.items() if k not in ("train_tasks",)}
        learned, value_path = phase("train", fit_models, store, run.dir / "models", log)
        if "search" not in skip:
            done_value = phase("searched_round", searched_round, args.quick, learned, value_path, store,
                               run.dir / "searched", log, args.store_seeds_from)
            data["search"] = phase("search", search, args.quick, learned, value_path, log, args.search_seeds,
                                   done_value, args.eval_seeds_from, not args.no_render, args.oracle_seeds)
            data["speed"] = speed(data["search"])
        if "offline" not in skip:
            data["offline_match"] = phase("offline", offline, store, args.quick, learned, value_path, run.dir, log,
                                         args.eval_seeds_from)
        if "filmstrip" not in skip:
            from parsimon.gui.world_model.experiments import filmstrip
            from parsimon.gui.world_model.value import ValueFunction

            frames = phase("filmstrip", lambda: filmstrip("miniwob", "click-tab-2", 1, value=ValueFunction(value_path),
                                                          learned_path=learned))
            data["filmstrip"] = [{k: v for k, v in f.items() if k not in ("before", "imagined", "real")}
                                 for f in frames]
            for folder in [run.dir] + ([Path(__file__).resolve().parent / "results"] if args.save else []):
                folder.mkdir(parents=True, exist_ok=True)
                filmstrip_png(folder / "wm_filmstrip.png", frames)
        write_results(run, "wm_bench", data, lambda p: plot(p, data), args.save)


if __name__ == "__main__":
    main()
