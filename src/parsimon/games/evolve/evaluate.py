"""Evaluate candidate programs: sandboxed, cascaded (cheap games first), in a pool of workers or on Ray
(a local Ray instance with ``workers`` CPUs, or the cluster at ``ray_address`` or ``$RAY_ADDRESS``, e.g.
``auto``; ``"local"`` always starts a local instance).

Fitness on game ``g`` = ``-exploitability`` of the candidate's average policy after ``iterations``
iterations. Games are ordered by size (number of information sets), so a broken or poor candidate is
stopped on the cheapest game: with ``cascade_factor`` set, the evaluation stops (status ``rejected``) when
the exploitability on a game exceeds ``cascade_factor`` times the seed program's on that game.
Each evaluation is charged to the governance ledger (component ``games.evolve.eval``: wall seconds, one
action).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError, DependencyNotInstalled

from .sandbox import Limits, SandboxResult, run_sandboxed

__all__ = ["Evaluator", "Evaluation", "order_games"]


@dataclass
class Evaluation:
    status: str
    fitness: dict[str, float]
    error: str
    seconds: float

    @property
    def valid(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return {"status": self.status, "fitness": self.fitness, "error": self.error[:2000],
                "seconds": round(self.seconds, 3)}


def order_games(games: list[str]) -> list[str]:
    """Games sorted by their number of information sets (cheapest first); ties keep the given order."""
    from parsimon.games.engine import compile_game

    sizes = {g: compile_game(g).num_infosets for g in games}
    return sorted(games, key=lambda g: (sizes[g], games.index(g)))


def _sandbox_call(source, games, iterations, limits, thresholds) -> dict:
    return run_sandboxed(source, games, iterations, limits=limits, thresholds=thresholds).to_json()


class Evaluator:
    def __init__(self, games: list[str], *, iterations: int = 200, limits: Limits | None = None,
                 cascade_factor: float | None = 10.0, workers: int = 1, use_ray: bool = False,
                 ledger: bool = True, ray_address: str | None = None):
        if not games:
            raise ConfigError("games must name at least one game")
        if not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.games = order_games(list(games))
        self.iterations = iterations
        self.limits = limits or Limits()
        self.cascade_factor = cascade_factor
        self.workers = workers
        self.use_ray = use_ray
        self.ray_address = ray_address
        self.ledger = ledger
        self.thresholds: dict[str, float] = {}
        self._ray_remote = None  # the remote function, registered once
        if use_ray:
            try:
                import ray  # noqa: F401
            except ImportError as exc:
                raise DependencyNotInstalled("ray", "ray", "--ray (Ray evaluator pool; without it a local pool runs)") from exc

    def set_reference(self, fitness: dict[str, float]) -> None:
        """Cascade thresholds from a reference program's fitness (normally the seed)."""
        if self.cascade_factor is None:
            self.thresholds = {}
            return
        # the last game needs no threshold: nothing follows it
        self.thresholds = {g: self.cascade_factor * max(-fitness[g], 1e-12) for g in self.games[:-1]}

    def _result(self, r: SandboxResult | dict) -> Evaluation:
        d = r.to_json() if isinstance(r, SandboxResult) else r
        fit = {g: -float(v) for g, v in d["exploitability"].items()}
        ev = Evaluation(d["status"], fit, d.get("error", ""), float(d.get("wall_s", 0.0)))
        if self.ledger:
            from parsimon.governance import get_ledger

            get_ledger().charge(component="games.evolve.eval", actions=1, wall_s=ev.seconds,
                                meta={"status": ev.status})
        return ev

    def evaluate(self, source: str) -> Evaluation:
        return self.evaluate_many([source])[0]

    def evaluate_many(self, sources: list[str]) -> list[Evaluation]:
        args = [(s, self.games, self.iterations, self.limits, self.thresholds) for s in sources]
        if self.use_ray:
            import ray

            if not ray.is_initialized():
                address = self.ray_address or os.environ.get("RAY_ADDRESS")
                if address == "local":
                    address = None
                try:
                    if address:
                        # an existing cluster: Ray refuses resource arguments when connecting to one
                        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
                    else:  # a new local instance sized to the worker count (never a `ray start` one on disk)
                        ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                                 ignore_reinit_error=True, log_to_driver=False)
                except (ConnectionError, ValueError, RuntimeError) as exc:
                    where = f"the cluster at {address!r}" if address else "a local Ray instance"
                    raise ConfigError(f"`--ray`: could not start or reach {where}: {exc}") from exc
            if self._ray_remote is None:
                self._ray_remote = ray.remote(_sandbox_call)
            raw = ray.get([self._ray_remote.remote(*a) for a in args])
        elif self.workers == 1 or len(sources) == 1:
            raw = [_sandbox_call(*a) for a in args]
        else:
            with ThreadPoolExecutor(max_workers=self.workers) as ex:
                raw = list(ex.map(lambda a: _sandbox_call(*a), args))
        return [self._result(r) for r in raw]


def _now() -> float:  # pragma: no cover - convenience
    return time.time()


def describe(ev: Evaluation) -> dict[str, Any]:
    return ev.to_json()
