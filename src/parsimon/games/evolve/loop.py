"""The evolution loop (the paper's AlphaEvolve procedure, spec §6): sample a parent by a random metric,
mutate it (LLM or offline), evaluate the child in the sandbox with a cascade, keep valid children in their
island, migrate between islands, checkpoint every generation.

Files in ``out_dir``: ``checkpoint.json`` (database, history, lineage, config; rewritten atomically after
each generation, so a run can be resumed with ``resume=True`` and continues exactly as an uninterrupted
run would: every random choice of generation ``g`` comes from ``default_rng([seed, g])``),
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

from .database import ProgramDatabase, source_hash
from .evaluate import Evaluator
from .mutate import EditError, OfflineMutator
from .sandbox import Limits
from .seeds import load_seed

__all__ = ["EvolveConfig", "EvolveResult", "evolve"]


@dataclass
class EvolveConfig:
    seed: str = "cfr_plus"
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
    migrate_every: int = 3
    island_capacity: int = 20
    inspirations: int = 2
    rng_seed: int = 0

    def __post_init__(self):
        if self.generations < 0:
            raise ConfigError(f"generations must be >= 0, got {self.generations}")
        if self.children_per_island < 1:
            raise ConfigError(f"children_per_island must be >= 1, got {self.children_per_island}")
        if self.migrate_every < 1:
            raise ConfigError(f"migrate_every must be >= 1, got {self.migrate_every}")

    def seed_source(self) -> str:
        # a name (one line) must be a known seed; anything with a newline is program source
        return load_seed(self.seed) if "\n" not in self.seed else self.seed

    def identity(self) -> dict:
        """What must not change between a run and its resumption."""
        return {"seed": source_hash(self.seed_source()), "games": list(self.games), "islands": self.islands,
                "iterations": self.iterations, "rng_seed": self.rng_seed,
                "children_per_island": self.children_per_island}


@dataclass
class EvolveResult:
    best_source: str
    best_fitness: dict[str, float]
    seed_fitness: dict[str, float]
    history: list[dict]
    lineage: list[dict]
    out_dir: str

    @property
    def best_mean(self) -> float:
        return float(np.mean(list(self.best_fitness.values())))

    @property
    def seed_mean(self) -> float:
        return float(np.mean(list(self.seed_fitness.values())))


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _snapshot(db: ProgramDatabase, gen: int) -> dict:
    best = db.best("mean")
    return {"generation": gen, "best_id": best.id, "best_mean": best.mean,
            "best_per_game": {g: db.best(g).metric(g) for g in db.games}}


def evolve(config: EvolveConfig, mutator: Any = None, *, out_dir: str | os.PathLike, resume: bool = False,
           progress: bool = False, evaluator: Evaluator | None = None) -> EvolveResult:
    """Run (or resume) an evolution. ``mutator`` has ``mutate(parent, previous, rng) -> Mutation``
    (default: :class:`OfflineMutator`)."""
    mutator = mutator or OfflineMutator()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / "checkpoint.json"
    ev = evaluator or Evaluator(config.games, iterations=config.iterations,
                                limits=Limits(config.time_s, config.memory_mb),
                                cascade_factor=config.cascade_factor, workers=config.workers,
                                use_ray=config.use_ray)
    if resume and ck_path.exists():
        ck = json.loads(ck_path.read_text())
        if ck["identity"] != config.identity():
            raise ConfigError(
                f"checkpoint {ck_path} belongs to another run ({ck['identity']}); use another out_dir or the same settings"
            )
        db = ProgramDatabase.from_json(ck["database"])
        history, lineage, seed_fit = ck["history"], ck["lineage"], ck["seed_fitness"]
        start = int(ck["generation"])
    else:
        if ck_path.exists() and not resume:
            raise ConfigError(f"{ck_path} exists: pass resume=True (--resume) or choose an empty out_dir")
        seed_src = config.seed_source()
        ev.thresholds = {}  # the seed is evaluated in full (it defines the cascade thresholds)
        res = ev.evaluate(seed_src)
        if not res.valid:
            raise ConfigError(f"the seed program does not evaluate: {res.status}: {res.error}")
        seed_fit = res.fitness
        db = ProgramDatabase(ev.games, islands=config.islands, island_capacity=config.island_capacity)
        for i in range(config.islands):
            db.add(seed_src, seed_fit, island=i, description="seed", eval_seconds=res.seconds)
        history = [_snapshot(db, 0)]
        lineage = []
        start = 0
        _save(ck_path, out, config, db, 0, history, lineage, seed_fit)
    ev.set_reference(seed_fit)

    bar = TaskBar("evolve", config.generations, enabled=progress, completed=start)
    try:
        for gen in range(start + 1, config.generations + 1):
            rng = np.random.default_rng([config.rng_seed, gen])
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
            _save(ck_path, out, config, db, gen, history, lineage, seed_fit)
            bar.update(advance=1, description=f"gen {gen}: best mean fitness {history[-1]['best_mean']:.4g}")
    finally:
        bar.close()
    best = db.best("mean")
    return EvolveResult(best.source, dict(best.fitness), dict(seed_fit), history, lineage, str(out))


def _save(ck_path: Path, out: Path, config: EvolveConfig, db: ProgramDatabase, gen: int, history, lineage,
          seed_fit) -> None:
    _atomic_json(ck_path, {"version": 1, "identity": config.identity(), "config": asdict(config),
                           "generation": gen, "database": db.to_json(), "history": history,
                           "lineage": lineage, "seed_fitness": seed_fit})
    tmp = out / "lineage.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lineage))
    os.replace(tmp, out / "lineage.jsonl")
    best = db.best("mean")
    (out / "best.py").write_text(f"# best program: id {best.id}, mean fitness {best.mean:.6g}\n" + best.source)
