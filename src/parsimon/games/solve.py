"""``solve(game, algo, iterations)``: run a CFR-family algorithm on the engine and record exploitability."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import ConfigError
from parsimon.progress import TaskBar

from .backend import BACKENDS, Tree, as_tree
from .best_response import CurveResult
from .best_response import exploitability as _exploitability
from .cfr import CFRDriver
from .engine import MAX_NODES, positive_int
from .policy import TabularPolicy
from .rules import ALGORITHMS

__all__ = ["solve", "SolveConfig", "SolveResult", "eval_schedule"]


@dataclass(frozen=True)
class SolveConfig:
    """One ``parsimon games solve`` run (the paper's CFR comparisons use 1,000 iterations)."""

    game: str
    algo: str = "cfr+"
    iterations: int = 1000
    eval_every: int | None = None  # None: 100 evaluation points
    backend: str = "numpy"
    device: str | None = None  # torch device; None: cuda when available
    max_nodes: int = MAX_NODES  # refuse larger games before compiling them

    def __post_init__(self) -> None:
        ALGORITHMS.check(self.algo)
        BACKENDS.check(self.backend)
        positive_int("iterations", self.iterations)
        positive_int("max_nodes", self.max_nodes)
        if self.eval_every is not None:
            positive_int("eval_every", self.eval_every)


@dataclass
class SolveResult(CurveResult):
    """A CFR run: the exploitability curve of the average policy, both policies, timings."""

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

    def to_dict(self) -> dict:
        """The curve and timings as JSON-ready values (the policies are left out: see ``average_policy``)."""
        return {
            "game": self.game, "algo": self.algo, "iterations": self.iterations,
            "exploitability": [[i, v] for i, v in self.exploitability],
            "seconds_per_iteration": self.seconds_per_iteration, "eval_seconds": self.eval_seconds,
            "compile_seconds": self.compile_seconds, "backend": self.backend,
            "final_exploitability": self.final_exploitability, **self.info,
        }

    to_json = to_dict  # the earlier name


def eval_schedule(iterations: int, eval_every: int | None) -> list[int]:
    """Iterations (1-based counts) after which the average policy is evaluated; always includes the last."""
    if eval_every is None:
        eval_every = max(1, iterations // 100)
    if eval_every < 1:
        raise ConfigError(f"`eval_every` must be >= 1, got {eval_every}")
    pts = list(range(eval_every, iterations + 1, eval_every))
    if iterations >= 1 and (not pts or pts[-1] != iterations):
        pts.append(iterations)
    return pts


def solve(game: Any, algo: Any = "cfr+", iterations: int = 1000, *, eval_every: int | None = None,
          backend: str | None = None, device: str | None = None, progress: bool = False,
          callback: Callable[[int, float], None] | None = None, run=None) -> SolveResult:
    """Run ``algo`` (a name in :data:`~parsimon.games.rules.ALGORITHMS`, or an
    :class:`~parsimon.games.rules.UpdateRule`) for ``iterations`` on ``game`` and return the exploitability
    (NashConv / players) of the average policy every ``eval_every`` iterations (default: 100 points) and at
    the end.

    Args:
        game: An OpenSpiel game string or object, a :class:`CompiledGame`, or a
            :class:`~parsimon.games.backend.Tree` (used as it is unless ``backend``/``device`` ask for another).
        backend: ``"numpy"`` (default) or ``"torch"`` (:data:`~parsimon.games.backend.BACKENDS`).
        run: A :class:`parsimon.run.Run`: every evaluation is logged to it and its progress bar is used.

    ``seconds_per_iteration`` counts the CFR iterations only (not the evaluations).
    """
    positive_int("iterations", iterations)
    points = set(eval_schedule(iterations, eval_every))
    tree = as_tree(game, backend, device)
    cg = tree.cg
    drv = CFRDriver(tree, algo)
    on_numpy = tree.B.name == "numpy"
    eval_tree = tree if on_numpy else Tree(cg, "numpy")
    curve: list[tuple[int, float]] = []
    t_iter = t_eval = 0.0
    title = f"{drv.rule.name} on {cg.game_string[:40]}"
    bar = run.progress(title, iterations) if run is not None else TaskBar(title, iterations, enabled=progress,
                                                                           transient=False)
    try:
        for k in range(1, iterations + 1):
            t0 = time.perf_counter()
            drv.iteration()
            if not on_numpy and k in points:
                _sync(tree)
            t_iter += time.perf_counter() - t0
            if k in points:
                t1 = time.perf_counter()
                e = _exploitability(eval_tree, drv.average_policy())
                t_eval += time.perf_counter() - t1
                curve.append((k, e))
                if run is not None:
                    run.log(k, exploitability=e)
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
