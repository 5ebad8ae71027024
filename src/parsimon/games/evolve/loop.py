"""The evolution loop (the paper's AlphaEvolve procedure, spec §6): sample a parent by a random metric,
mutate it (LLM or offline), evaluate the child in the sandbox with a cascade, keep valid children in their
island, migrate between islands, checkpoint every generation.

Files in ``out_dir``: ``checkpoint.json`` (database, history, lineage, config; rewritten atomically after
each generation, so a run can be resumed with ``resume=True`` and continues exactly as an uninterrupted
run would: every random choice of generation ``g`` comes from ``default_rng([seed, g])``; inside a
:class:`parsimon.run.Run` the same state goes through ``run.save_checkpoint`` instead),
``lineage.jsonl`` (one record per child, in (generation, island) order: parent, metric, mutation, status,
fitness, ``llm_usage``; a mutation that fails is ``status: mutation_failed`` with ``failed_stage`` ``parse``
(no SEARCH/REPLACE block), ``apply`` (a SEARCH that does not match) or ``llm`` (the request failed), the
tokens it cost and the start of the reply) and ``best.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.errors import ConfigError, LLMError
from parsimon.progress import TaskBar
from parsimon.run import Result

from .database import ProgramDatabase, source_hash
from .evaluate import Evaluator
from .mutate import EditError, OfflineMutator
from .sandbox import Limits
from .seeds import load_seed

__all__ = ["EvolveConfig", "EvolveResult", "evolve"]


@dataclass(frozen=True)
class EvolveConfig:
    """Settings of one evolution run (defaults: a short run; the paper evaluates with 1,000 iterations).

    ``program`` is the starting program: a name in :data:`~parsimon.games.evolve.seeds.SEEDS` or source text.
    ``seed`` is the random seed (parent and metric sampling, the offline mutator's choices).
    """

    program: str = "cfr_plus"
    games: list[str] = field(default_factory=lambda: ["kuhn_poker(players=3)", "leduc_poker"])
    generations: int = 5
    islands: int = 2
    children_per_island: int = 1
    iterations: int = 200
    time_s: float = 300.0
    memory_mb: int = 1024
    cascade_factor: float | None = 10.0
    workers: int = 1
    use_ray: bool = False
    ray_address: str | None = None  # with use_ray: "local", "auto", "ray://HOST:PORT"; None: $RAY_ADDRESS or local
    migrate_every: int = 3
    island_capacity: int = 20
    inspirations: int = 2
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"`seed` is the random seed (an integer), got {self.seed!r}; the starting program "
                              "is `program`")
        if self.generations < 0:
            raise ConfigError(f"generations must be >= 0, got {self.generations}")
        if self.children_per_island < 1:
            raise ConfigError(f"children_per_island must be >= 1, got {self.children_per_island}")
        if self.migrate_every < 1:
            raise ConfigError(f"migrate_every must be >= 1, got {self.migrate_every}")

    def program_source(self) -> str:
        """The starting program's source: a name (one line) must be a known seed program; anything with a
        newline is program source."""
        return load_seed(self.program) if "\n" not in self.program else self.program

    seed_source = program_source  # the earlier name

    def identity(self) -> dict:
        """What must not change between a run and its resumption."""
        return {"program": source_hash(self.program_source()), "games": list(self.games), "islands": self.islands,
                "iterations": self.iterations, "seed": self.seed, "children_per_island": self.children_per_island}


@dataclass
class EvolveResult(Result):
    """The best program found, its and the starting program's fitness per game, history and lineage."""

    FINAL = "best_mean"

    best_source: str
    best_fitness: dict[str, float]
    seed_fitness: dict[str, float]
    history: list[dict]
    lineage: list[dict]
    out_dir: str

    @property
    def best_mean(self) -> float:
        """Mean fitness (-exploitability) of the best program over the games."""
        return float(np.mean(list(self.best_fitness.values())))

    @property
    def seed_mean(self) -> float:
        """Mean fitness of the starting program."""
        return float(np.mean(list(self.seed_fitness.values())))

    def summary(self) -> dict:
        """Counts and totals of the lineage (what the command prints)."""
        from collections import Counter

        statuses = Counter(r["status"] for r in self.lineage)
        stages = Counter(r.get("failed_stage", "?") for r in self.lineage if r["status"] == "mutation_failed")
        usage = [r["llm_usage"] for r in self.lineage if r.get("llm_usage")]
        return {"seed_fitness": self.seed_fitness, "best_fitness": self.best_fitness, "seed_mean": self.seed_mean,
                "best_mean": self.best_mean, "children": len(self.lineage), "valid_children": statuses.get("ok", 0),
                "status_counts": dict(statuses), "mutation_failures_by_stage": dict(stages),
                "llm_tokens": {"calls": len(usage), "prompt": sum(u["prompt_tokens"] for u in usage),
                               "completion": sum(u["completion_tokens"] for u in usage)},
                "out": self.out_dir}


class _Checkpoints:
    """The loop's state between generations: ``checkpoint.json`` in the folder, or the run's checkpoint."""

    def __init__(self, out: Path, run) -> None:
        self.run = run
        self.path = out / "checkpoint.json"

    def exists(self) -> bool:
        return (self.run.checkpoint_path if self.run is not None else self.path).is_file()

    def load(self) -> dict:
        if self.run is not None:
            return self.run.load_checkpoint(restore_rng=False)
        return json.loads(self.path.read_text())

    def save(self, state: dict) -> None:
        if self.run is not None:
            self.run.save_checkpoint(state)
            return
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.path)


def _snapshot(db: ProgramDatabase, gen: int) -> dict:
    best = db.best("mean")
    return {"generation": gen, "best_id": best.id, "best_mean": best.mean,
            "best_per_game": {g: db.best(g).metric(g) for g in db.games}}


def evolve(config: EvolveConfig, mutator: Any = None, *, out_dir: str | os.PathLike | None = None,
           resume: bool = False, progress: bool = False, evaluator: Evaluator | None = None,
           run=None) -> EvolveResult:
    """Run (or resume) an evolution. ``mutator`` has ``mutate(parent, previous, rng) -> Mutation``
    (default: :class:`OfflineMutator`).

    Args:
        out_dir: The folder for ``checkpoint.json``, ``lineage.jsonl`` and ``best.py`` (without ``run``).
        resume: Continue from the checkpoint; the settings that shape the run (:meth:`EvolveConfig.identity`)
            must be the same, ``generations`` may grow.
        run: A :class:`parsimon.run.Run`: its folder holds the files, its checkpoint the state (``start_run``
            checked the config on resume), each generation is logged to it and its metrics are set.
    """
    if run is None and out_dir is None:
        raise ConfigError("evolve needs `out_dir` or `run`")
    mutator = mutator or OfflineMutator()
    out = Path(run.dir if run is not None else out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = _Checkpoints(out, run)
    resume = resume or bool(run is not None and run.resumed)
    ev = evaluator or Evaluator(config.games, iterations=config.iterations,
                                limits=Limits(config.time_s, config.memory_mb),
                                cascade_factor=config.cascade_factor, workers=config.workers,
                                use_ray=config.use_ray, ray_address=config.ray_address)
    if resume and store.exists():
        ck = store.load()
        if ck["identity"] != config.identity():
            raise ConfigError(
                f"checkpoint {store.path} belongs to another run ({ck['identity']}); use another out_dir or the "
                "same settings"
            )
        db = ProgramDatabase.from_json(ck["database"])
        history, lineage, seed_fit = ck["history"], ck["lineage"], ck["seed_fitness"]
        start = int(ck["generation"])
    else:
        if store.exists() and not resume:
            raise ConfigError(f"{store.path} exists: pass resume=True (--resume) or choose an empty out_dir")
        seed_src = config.program_source()
        ev.thresholds = {}  # the starting program is evaluated in full (it defines the cascade thresholds)
        res = ev.evaluate(seed_src)
        if not res.valid:
            raise ConfigError(f"the starting program does not evaluate: {res.status}: {res.error}")
        seed_fit = res.fitness
        db = ProgramDatabase(ev.games, islands=config.islands, island_capacity=config.island_capacity)
        for i in range(config.islands):
            db.add(seed_src, seed_fit, island=i, description="seed", eval_seconds=res.seconds)
        history = [_snapshot(db, 0)]
        lineage = []
        start = 0
        _save(store, out, config, db, 0, history, lineage, seed_fit)
    ev.set_reference(seed_fit)

    if run is not None:
        bar = run.progress("evolve", config.generations)
        bar.update(completed=start)
    else:
        bar = TaskBar("evolve", config.generations, enabled=progress, completed=start)
    try:
        for gen in range(start + 1, config.generations + 1):
            rng = np.random.default_rng([config.seed, gen])
            recs, pending = [], []  # every child's record in (island, child) order; (record, source) to evaluate
            for island in range(config.islands):
                for _ in range(config.children_per_island):
                    parent, metric = db.sample_parent(island, rng)
                    prev = [(p.source, {"mean": p.mean, **p.fitness})
                            for p in db.inspirations(island, metric, parent.id, config.inspirations)]
                    rec = {"generation": gen, "island": island, "parent": parent.id, "metric": metric}
                    recs.append(rec)
                    try:
                        mut = mutator.mutate(parent.source, prev, rng)
                    except (EditError, LLMError) as exc:
                        # BudgetExceeded is not caught: a spent budget stops the run (the checkpoint of the
                        # last generation stays, so it can be resumed with a larger budget)
                        rec.update(status="mutation_failed", error=str(exc)[:500], description="")
                        rec["failed_stage"] = getattr(exc, "stage", "llm" if isinstance(exc, LLMError) else "edit")
                        if getattr(exc, "usage", None):
                            rec["llm_usage"] = exc.usage
                        if getattr(exc, "reply", None) is not None:
                            rec["reply_excerpt"] = exc.reply[:300]
                        continue
                    rec["description"] = mut.description
                    if mut.usage:
                        rec["llm_usage"] = mut.usage
                    pending.append((rec, mut.source))
            evals = ev.evaluate_many([s for _, s in pending]) if pending else []
            for (rec, src), e in zip(pending, evals, strict=False):
                rec.update(status=e.status, fitness=e.fitness, seconds=round(e.seconds, 3),
                           source_hash=source_hash(src))
                if e.error:
                    rec["error"] = e.error[:500]
                if e.valid:
                    prog = db.add(src, e.fitness, island=rec["island"], parent=rec["parent"], generation=gen,
                                  description=rec["description"], eval_seconds=e.seconds)
                    rec["id"] = prog.id
                    rec["mean"] = prog.mean
            lineage.extend(recs)
            if gen % config.migrate_every == 0:
                db.migrate()
            history.append(_snapshot(db, gen))
            _save(store, out, config, db, gen, history, lineage, seed_fit)
            if run is not None:
                run.log(gen, best_mean=history[-1]["best_mean"], children=len(recs),
                        valid_children=sum(r["status"] == "ok" for r in recs))
            bar.advance(1)
            bar.update(description=f"gen {gen}: best mean fitness {history[-1]['best_mean']:.4g}")
    finally:
        bar.close()
    best = db.best("mean")
    result = EvolveResult(best.source, dict(best.fitness), dict(seed_fit), history, lineage, str(out))
    if run is not None:
        summary = result.summary()
        run.set_metrics({k: v for k, v in summary.items() if k != "out"})
    return result


def _save(store: _Checkpoints, out: Path, config: EvolveConfig, db: ProgramDatabase, gen: int, history, lineage,
          seed_fit) -> None:
    store.save({"version": 1, "identity": config.identity(), "config": asdict(config), "generation": gen,
                "database": db.to_json(), "history": history, "lineage": lineage, "seed_fitness": seed_fit})
    tmp = out / "lineage.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lineage))
    os.replace(tmp, out / "lineage.jsonl")
    best = db.best("mean")
    (out / "best.py").write_text(f"# best program: id {best.id}, mean fitness {best.mean:.6g}\n" + best.source)
