"""Program database of the evolution loop: per-game fitness and their mean, islands, parent sampling.

Fitness of a program on game ``g`` is ``-exploitability`` after the evaluation's iterations; the metrics
are the games plus ``"mean"`` (their average), ``|G| + 1`` objectives as in the paper (spec §3.2, §6.1).
Parent sampling: a metric is drawn uniformly at random, then a parent of the chosen island is drawn with
probability proportional to ``1 / (rank + 1)`` under that metric (rank 0 = best). Islands evolve
separately; :meth:`ProgramDatabase.migrate` copies each island's best (by mean) to the next island
(ring). Islands are capped at ``island_capacity`` programs: the one with the worst mean that is not the
best on any metric leaves first.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from parsimon.errors import ConfigError

__all__ = ["Program", "ProgramDatabase", "source_hash"]


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@dataclass
class Program:
    id: int
    source: str
    fitness: dict[str, float]
    island: int = 0
    parent: int | None = None
    generation: int = 0
    description: str = "seed"
    eval_seconds: float = 0.0
    metadata: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.fitness.values()))) if self.fitness else float("-inf")

    def metric(self, name: str) -> float:
        if name == "mean":
            return self.mean
        return float(self.fitness.get(name, float("-inf")))

    def to_json(self) -> dict:
        d = asdict(self)
        d["mean"] = self.mean
        return d

    @classmethod
    def from_json(cls, d: dict) -> Program:
        d = {k: v for k, v in d.items() if k != "mean"}
        return cls(**d)


class ProgramDatabase:
    def __init__(self, games: list[str], *, islands: int = 2, island_capacity: int = 20):
        if not games:
            raise ConfigError("the program database needs at least one game")
        if islands < 1:
            raise ConfigError(f"islands must be >= 1, got {islands}")
        if island_capacity < 2:
            raise ConfigError(f"island_capacity must be >= 2, got {island_capacity}")
        self.games = list(games)
        self.n_islands = islands
        self.capacity = island_capacity
        self.programs: dict[int, Program] = {}
        self.islands: list[list[int]] = [[] for _ in range(islands)]
        self.next_id = 0

    @property
    def metrics(self) -> list[str]:
        return self.games + ["mean"]

    def add(self, source: str, fitness: dict[str, float], *, island: int, parent: int | None = None,
            generation: int = 0, description: str = "", eval_seconds: float = 0.0,
            metadata: dict | None = None) -> Program:
        missing = [g for g in self.games if g not in fitness]
        if missing:
            raise ConfigError(f"fitness lacks games {missing}")
        prog = Program(self.next_id, source, {g: float(fitness[g]) for g in self.games}, island, parent,
                       generation, description, eval_seconds, dict(metadata or {}))
        self.next_id += 1
        self.programs[prog.id] = prog
        self.islands[island].append(prog.id)
        self._trim(island)
        return prog

    def _trim(self, island: int) -> None:
        ids = self.islands[island]
        while len(ids) > self.capacity:
            protected = {max(ids, key=lambda i: (self.programs[i].metric(m), -i)) for m in self.metrics}
            victims = [i for i in ids if i not in protected]
            worst = min(victims, key=lambda i: (self.programs[i].mean, -i))
            ids.remove(worst)

    def members(self, island: int) -> list[Program]:
        return [self.programs[i] for i in self.islands[island]]

    def ranked(self, island: int, metric: str) -> list[Program]:
        return sorted(self.members(island), key=lambda p: (-p.metric(metric), p.id))

    def sample_parent(self, island: int, rng: np.random.Generator) -> tuple[Program, str]:
        metric = self.metrics[int(rng.integers(len(self.metrics)))]
        ranked = self.ranked(island, metric)
        if not ranked:
            raise ConfigError(f"island {island} is empty")
        w = 1.0 / (np.arange(len(ranked)) + 1.0)
        k = int(rng.choice(len(ranked), p=w / w.sum()))
        return ranked[k], metric

    def inspirations(self, island: int, metric: str, exclude: int, k: int = 2) -> list[Program]:
        return [p for p in self.ranked(island, metric) if p.id != exclude][:k]

    def best(self, metric: str = "mean") -> Program:
        alive = {i for isl in self.islands for i in isl}
        return max((self.programs[i] for i in alive), key=lambda p: (p.metric(metric), -p.id))

    def migrate(self) -> int:
        """Copy each island's best program (by mean) to the next island unless its code is there; returns
        the number of copies."""
        if self.n_islands < 2:
            return 0
        bests = [self.ranked(i, "mean")[0] if self.islands[i] else None for i in range(self.n_islands)]
        moved = 0
        for i, b in enumerate(bests):
            if b is None:
                continue
            j = (i + 1) % self.n_islands
            if any(source_hash(p.source) == source_hash(b.source) for p in self.members(j)):
                continue
            self.add(b.source, b.fitness, island=j, parent=b.id, generation=b.generation,
                     description=f"migrated from island {i}", eval_seconds=0.0)
            moved += 1
        return moved

    def to_json(self) -> dict:
        return {"games": self.games, "islands": self.n_islands, "capacity": self.capacity,
                "next_id": self.next_id, "members": self.islands,
                "programs": [p.to_json() for p in self.programs.values()]}

    @classmethod
    def from_json(cls, d: dict) -> ProgramDatabase:
        db = cls(d["games"], islands=d["islands"], island_capacity=d["capacity"])
        db.next_id = d["next_id"]
        db.islands = [list(m) for m in d["members"]]
        db.programs = {p["id"]: Program.from_json(p) for p in d["programs"]}
        return db
