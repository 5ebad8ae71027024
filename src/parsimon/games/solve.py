"""``solve(game, algo, iterations)``: run a CFR-family algorithm on the engine and record exploitability."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import ConfigError
from parsimon.progress import TaskBar

from .backend import Tree
from .best_response import exploitability as _exploitability
from .cfr import CFRDriver
from .engine import CompiledGame, compile_game
from .policy import TabularPolicy

__all__ = ["solve", "SolveResult", "eval_schedule"]


@dataclass
class SolveResult:
    game: str
    algo: str
    iterations: int
    exploitability: list[tuple[int, float]]
    average_policy: TabularPolicy
    current_policy: TabularPolicy
    seconds_per_iteration: float
    eval_seconds: float = 0.0
    compile_seconds: float = 0.0
    backend: str = "numpy"
    info: dict = field(default_factory=dict)

    @property
    def final_exploitability(self) -> float:
        return self.exploitability[-1][1] if self.exploitability else float("nan")

    def to_json(self) -> dict:
        return {
            "game": self.game, "algo": self.algo, "iterations": self.iterations,
            "exploitability": [[i, v] for i, v in self.exploitability],
            "seconds_per_iteration": self.seconds_per_iteration, "eval_seconds": self.eval_seconds,
            "compile_seconds": self.compile_seconds, "backend": self.backend, **self.info,
        }


def eval_schedule(iterations: int, eval_every: int | None) -> list[int]:
    """Iterations (1-based counts) after which the average policy is evaluated; always includes the last."""
    if eval_every is None:
        eval_every = max(1, iterations // 100)
    if eval_every < 1:
        raise ConfigError(f"eval_every must be >= 1, got {eval_every}")
    pts = list(range(eval_every, iterations + 1, eval_every))
    if iterations >= 1 and (not pts or pts[-1] != iterations):
        pts.append(iterations)
    return pts


def solve(game: Any, algo: Any = "cfr+", iterations: int = 1000, *, eval_every: int | None = None,
          backend: str = "numpy", device: str | None = None, progress: bool = False,
          callback: Callable[[int, float], None] | None = None) -> SolveResult:
    """Run ``algo`` (``cfr``, ``cfr+``, ``lcfr``, ``dcfr``, ``pcfr+``, ``pdcfr+``, ``vad-cfr``, ``aod-cfr``,
    or an :class:`~parsimon.games.rules.UpdateRule`) for ``iterations`` on ``game`` (OpenSpiel string or
    object, or a compiled game) and return the exploitability (NashConv / players) of the average policy
    every ``eval_every`` iterations (default: 100 points) and at the end.

    ``seconds_per_iteration`` counts the CFR iterations only (not the evaluations).
    """
    if not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
    points = set(eval_schedule(iterations, eval_every))
    cg = game if isinstance(game, CompiledGame) else compile_game(game)
    tree = Tree(cg, backend, device)
    drv = CFRDriver(tree, algo)
    eval_tree = tree if backend == "numpy" else Tree(cg, "numpy")
    curve: list[tuple[int, float]] = []
    t_iter = t_eval = 0.0
    bar = TaskBar(f"{drv.rule.name} on {cg.game_string[:40]}", iterations, enabled=progress, transient=False)
    try:
        for k in range(1, iterations + 1):
            t0 = time.perf_counter()
            drv.iteration()
            if backend != "numpy" and k in points:
                _sync(tree)
            t_iter += time.perf_counter() - t0
            if k in points:
                t1 = time.perf_counter()
                e = _exploitability(eval_tree, drv.average_policy())
                t_eval += time.perf_counter() - t1
                curve.append((k, e))
                if callback is not None:
                    callback(k, e)
                bar.update(completed=k, description=f"{drv.rule.name} expl {e:.3g}")
            elif k % 10 == 0:
                bar.update(completed=k)
    finally:
        bar.close()
    _sync(tree)
    return SolveResult(
        game=cg.game_string, algo=drv.rule.name, iterations=iterations, exploitability=curve,
        average_policy=TabularPolicy(cg, drv.average_policy()),
        current_policy=TabularPolicy(cg, drv.current_policy()),
        seconds_per_iteration=t_iter / iterations, eval_seconds=t_eval,
        compile_seconds=cg.compile_seconds, backend=f"{tree.B.name}:{tree.B.device}",
    )


def _sync(tree: Tree) -> None:
    if tree.B.name == "torch" and tree.B.torch.cuda.is_available() and str(tree.B.device).startswith("cuda"):
        tree.B.torch.cuda.synchronize()
