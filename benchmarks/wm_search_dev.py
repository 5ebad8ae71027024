"""How the search's scorer settings were chosen: value-function labels, stopping and margin on development seeds.

The world-model benchmark (``wm_bench.py``) evaluates the search on seeds 0-2; the transition store is
collected on seeds 100-101. The scorer's settings were chosen on a third set, seeds 200-201 by default,
with this script:

* ``label``: the value function's training labels (``episode``: every step of a solved episode is
  positive; ``progress``: only the steps of solved episodes that changed the page, see
  :func:`parsimon.gui.world_model.value.step_labels`; ``progress-nostop``: the same without credit for
  stopping; ``progress-named``: ``progress-nostop`` plus credit for a click on an element the instruction
  names that changed nothing visible);
* ``stop``: whether the scorer may overrule the proposal policy's stop (``scored``), scores it by the value
  function's done model (``done``), or not (``policy``);
* ``margin``: how much more another candidate must score to replace the proposal's first choice;
* ``check`` (in place of a stop setting): the scored stop plus the done check
  (``SearchConfig.done_check`` 0.5: stop once the done model reads the task as done), with the done model
  also fit on one searched round of the flywheel: the learned search (this label's value function) plays
  both suites on ``--round-seeds`` (default 100-103, the store's side of the seeds) and logs its own
  episodes, which then teach the done model and nothing else.

Each variant plays the MiniWoB search task list (learned and oracle world models, text mode, K=5) and the
apps task list (learned; ``--apps-oracle`` adds the oracle, which is slow there), beside the proposal
policy alone and the search without a world model. Writes ``wm_search_dev.json`` to the run folder
(``--save``: also to ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _outputs import add_output_options, open_run, write_results  # noqa: E402

from parsimon.gui.world_model.search import DEFAULT_DONE_CHECK as DONE_CHECK  # noqa: E402  (the "check" variant's)

# (label, stop, margin): the settings before this comparison first, then one change at a time
VARIANTS = (("episode", "policy", 0.15), ("progress", "policy", 0.15), ("progress", "scored", 0.15),
            ("progress", "scored", 0.05), ("progress", "scored", 0.25), ("progress-nostop", "scored", 0.15),
            ("progress-nostop", "done", 0.15), ("progress-nostop", "check", 0.15), ("progress-named", "scored", 0.15),
            ("progress-named", "check", 0.15))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True, help="the transition store (collected on seeds 100-101)")
    ap.add_argument("--learned", type=Path, default=None,
                    help="a learned world model fit on that store (default: fit one here)")
    ap.add_argument("--seeds", default="200-201", help="development seeds, like 200-201 or 200,205 (default 200-201)")
    ap.add_argument("--suites", default="miniwob,apps", help="miniwob, apps or both (default both)")
    ap.add_argument("--apps-oracle", action="store_true", help="also the oracle on the apps (slow)")
    ap.add_argument("--round-seeds", default="100-103", help="seeds of the searched round of the 'check' variant "
                    "(default 100-103)")
    ap.add_argument("--variants", default="", help="label/stop/margin, comma-separated (default: all of "
                    + ", ".join("/".join(map(str, v)) for v in VARIANTS) + ")")
    add_output_options(ap, "wm-search-dev")
    args = ap.parse_args()
    from parsimon.errors import ConfigError
    from parsimon.gui.evaluate import parse_seeds

    try:
        seeds = list(parse_seeds(args.seeds))
    except ConfigError as exc:
        ap.error(str(exc).replace("`", ""))
    try:
        round_seeds = list(parse_seeds(args.round_seeds))
    except ConfigError as exc:
        ap.error(str(exc).replace("`", "").replace("--seeds", "--round-seeds"))
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    if not suites or not set(suites) <= {"miniwob", "apps"}:
        ap.error(f"--suites must name miniwob, apps or both, got {args.suites!r}")
    variants = list(VARIANTS)
    if args.variants:
        names = {"/".join(map(str, v)): v for v in VARIANTS}
        unknown = [v for v in args.variants.split(",") if v.strip() not in names]
        if unknown:
            ap.error(f"--variants: unknown {unknown}; choose from {sorted(names)}")
        variants = [names[v.strip()] for v in args.variants.split(",")]
    if not args.store.is_dir():
        ap.error(f"--store must be a folder, got {args.store}")
    import torch  # noqa: F401 - pins one thread for anything that uses it

    torch.set_num_threads(1)
    from parsimon.gui.world_model.experiments import (
        APPS_SEARCH_TASKS,
        MINIWOB_SEARCH_TASKS,
        SearchSpec,
        search_table,
        searched_round,
    )
    from parsimon.gui.world_model.learned import LearnedWorldModel
    from parsimon.gui.world_model.store import TransitionStore
    from parsimon.gui.world_model.value import ValueFunction

    data: dict = {"seeds": seeds, "variants": {}}
    with open_run("wm-search-dev", args) as run:
        transitions = list(TransitionStore(args.store).transitions())
        learned = str(args.learned) if args.learned else str(LearnedWorldModel.fit(transitions).save(
            run.dir / "learned.pkl"))
        values = {label: ValueFunction.fit(transitions, label=label, render=False) for label in {v[0] for v in variants}}
        checked = {}  # label -> the value function whose done model also learned from a searched round
        for label in sorted({v[0] for v in variants if v[1] == "check"}):
            searched = searched_round(run.dir / "searched" / label, round_seeds, value=values[label],
                                      learned_path=learned)
            checked[label] = ValueFunction.fit(transitions, label=label, render=False, done_transitions=searched)
            data.setdefault("searched_round", {})[label] = {"seeds": round_seeds, "transitions": len(searched)}
        for suite in suites:
            tasks = list(MINIWOB_SEARCH_TASKS if suite == "miniwob" else APPS_SEARCH_TASKS)
            steps = 10 if suite == "miniwob" else 12
            base = search_table(suite, tasks, seeds, [SearchSpec("proposal")], value=None, max_steps=steps)
            data.setdefault("proposal", {})[suite] = base["proposal"]["success_rate"]
            for label, stop, margin in variants:
                name = f"{label}/{stop}/{margin}"
                check = stop == "check"
                kw = {"margin": margin, "stop": None if check else stop, "done_check": DONE_CHECK if check else 0.0}
                specs = [SearchSpec("learned text K=5", "learned", 5, "text", **kw)]
                if suite == "miniwob" or args.apps_oracle:
                    specs.append(SearchSpec("oracle text K=5", "oracle", 5, "text", **kw))
                t0 = time.perf_counter()
                table = search_table(suite, tasks, seeds, specs, value=checked[label] if check else values[label],
                                     learned_path=learned, max_steps=steps)
                row = {k: v["success_rate"] for k, v in table.items()}
                data["variants"].setdefault(name, {})[suite] = row
                print(f"{suite} {name}: proposal {base['proposal']['success_rate']:.3f}, "
                      + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
                      + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
        write_results(run, "wm_search_dev", data, None, args.save)


if __name__ == "__main__":
    main()
