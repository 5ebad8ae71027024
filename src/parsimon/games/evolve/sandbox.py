"""Evaluate an untrusted candidate program in :mod:`parsimon.sandbox`, game by game, with a cascade.

For each game (cheapest first) the parent compiles the game (cached), hands the arrays to a fresh
sandbox worker as an input file, and the worker runs the candidate for ``iterations`` iterations on the
engine's driver and reports the candidate's **average policy** — not its exploitability. The parent
checks the policy (shape, finite, non-negative, a distribution over the legal actions) and computes the
exploitability itself with the engine's best response, so a candidate cannot forge its own fitness by
patching the evaluator inside the sandbox. The cascade stops when a game's exploitability exceeds its
threshold.

Failures are scored, never raised: :class:`SandboxResult` ``status`` is ``ok``, ``error``, ``timeout``,
``memory``, ``network`` (a socket was refused), ``disk``, ``killed`` or ``rejected`` (cascade threshold
missed). The isolation (bubblewrap namespaces, or the guarded fallback) is that of
:mod:`parsimon.sandbox` and is recorded in ``isolation``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from parsimon.errors import ConfigError
from parsimon.sandbox import Limits as _Limits
from parsimon.sandbox import Sandbox

__all__ = ["Limits", "SandboxResult", "run_sandboxed"]

_PRELOAD = ("numpy", "parsimon.games.candidate", "parsimon.games.solve", "parsimon.games.engine")

# Runs inside the sandbox: load the compiled game, run the candidate, report its average policy.
_DRIVER = """
import time
import numpy as np
from parsimon.games.candidate import run_candidate
from parsimon.games.engine import CompiledGame, _ARRAY_FIELDS

with np.load("game.npz", allow_pickle=False) as z:
    arrays = {k: z[k] for k in _ARRAY_FIELDS}
    meta = z["meta"]
game = CompiledGame(game_string=str(meta[0]), num_players=int(meta[1]), num_actions=int(meta[2]), **arrays)
t0 = time.perf_counter()
res = run_candidate(PAYLOAD["source"], game, int(PAYLOAD["iterations"]), eval_every=int(PAYLOAD["iterations"]))
report({"policy": res.average_policy.array.tolist(), "seconds": time.perf_counter() - t0})
"""


@dataclass
class Limits:
    """Time for the whole evaluation (all games) and memory per game."""

    time_s: float = 120.0
    memory_mb: int = 1024

    def __post_init__(self):
        if not (isinstance(self.time_s, (int, float)) and self.time_s > 0):
            raise ConfigError(f"Limits.time_s must be > 0 seconds, got {self.time_s}")
        if not (isinstance(self.memory_mb, int) and self.memory_mb > 0):
            raise ConfigError(f"Limits.memory_mb must be a positive integer, got {self.memory_mb!r}")


@dataclass
class SandboxResult:
    """The outcome of one candidate's evaluation."""

    status: str
    exploitability: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""
    wall_s: float = 0.0
    isolation: str = ""

    @property
    def ok(self) -> bool:
        """True when every game was evaluated."""
        return self.status == "ok"

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def _save_game(cg, path: Path) -> None:
    from parsimon.games.engine import _ARRAY_FIELDS

    meta = np.array([cg.game_string, str(cg.num_players), str(cg.num_actions)])
    np.savez(path, meta=meta, **{k: getattr(cg, k) for k in _ARRAY_FIELDS})


def _check_policy(cg, raw) -> np.ndarray:
    """The reported policy as an array, or ValueError saying what is wrong with it."""
    arr = np.asarray(raw, dtype=np.float64)
    want = (cg.num_infosets, cg.num_actions)
    if arr.shape != want:
        raise ValueError(f"the reported policy has shape {arr.shape}, expected {want}")
    if not np.isfinite(arr).all():
        raise ValueError("the reported policy holds non-finite values")
    legal = cg.legal.astype(bool)
    if (arr < -1e-12).any() or (arr[~legal] > 1e-12).any():
        raise ValueError("the reported policy puts negative mass or mass on illegal actions")
    sums = arr.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        raise ValueError("the reported policy is not a distribution at every information set")
    return np.where(legal, np.maximum(arr, 0.0), 0.0) / sums[:, None]


def _status_of(res) -> str:
    if res.status == "error" and "PermissionError" in res.error and "socket" in (res.error + res.stderr):
        return "network"
    return res.status


def run_sandboxed(source: str, games: list[str], iterations: int, *, limits: Limits | None = None,
                  thresholds: dict[str, float] | None = None, task: str = "cfr",
                  scratch_root: str | os.PathLike | None = None, isolation: str = "auto") -> SandboxResult:
    """Evaluate ``source`` on ``games`` (in order), each in a fresh sandbox worker.

    ``task='cfr'``: the source defines the three CFR classes (see :mod:`parsimon.games.candidate`); each
    game runs ``iterations`` iterations and records the exploitability of the average policy (computed
    by the caller from the reported policy). ``thresholds``: game -> largest exploitability that lets
    the cascade continue to the next game. ``scratch_root``: where the compiled games are staged.
    """
    from parsimon.games.best_response import exploitability
    from parsimon.games.engine import compile_game
    from parsimon.games.policy import TabularPolicy

    limits = limits or Limits()
    if task not in ("cfr",):
        raise ConfigError(f"task must be 'cfr', got {task!r}")
    if not games:
        raise ConfigError("games must name at least one game")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ConfigError(f"iterations must be a positive integer, got {iterations!r}")
    if not isinstance(source, str):
        raise ConfigError(f"source must be a string, got {type(source).__name__}")
    thresholds = dict(thresholds or {})
    out = SandboxResult(status="ok")
    t_start = time.perf_counter()
    box = Sandbox(_Limits(wall_s=limits.time_s, memory_mb=limits.memory_mb, scratch_mb=64),
                  isolation=isolation, preload=_PRELOAD, warm=False)
    out.isolation = box.isolation
    try:
        with tempfile.TemporaryDirectory(prefix="parsimon-games-", dir=scratch_root) as tmp:
            for g in games:
                left = limits.time_s - (time.perf_counter() - t_start)
                if left <= 0:
                    out.status, out.error = "timeout", f"wall-clock limit of {limits.time_s:g} s exceeded"
                    break
                cg = compile_game(g)
                path = Path(tmp) / "game.npz"
                _save_game(cg, path)
                res = box.run(_DRIVER, files={"game.npz": path}, payload={"source": source, "iterations": iterations},
                              limits=_Limits(wall_s=left, memory_mb=limits.memory_mb, scratch_mb=64))
                if not res.ok:
                    out.status = _status_of(res)
                    tail = res.stderr.strip().splitlines()[-6:]
                    out.error = res.error + ("\n" + "\n".join(tail) if tail else "")
                    if out.status == "timeout":
                        out.error = f"wall-clock limit of {limits.time_s:g} s exceeded"
                    break
                report = res.result if isinstance(res.result, dict) else {}
                try:
                    policy = _check_policy(cg, report.get("policy"))
                except ValueError as exc:
                    out.status, out.error = "error", f"on {g}: {exc}"
                    break
                value = float(exploitability(cg, TabularPolicy(cg, policy)))
                if not math.isfinite(value):
                    out.status, out.error = "error", f"exploitability on {g} is not finite ({value})"
                    break
                out.exploitability[g] = value
                out.seconds[g] = float(report.get("seconds", res.seconds))
                thr = thresholds.get(g)
                if thr is not None and value > thr:
                    out.status = "rejected"
                    out.error = f"cascade: exploitability {value:.4g} on {g} above threshold {thr:.4g}"
                    break
    finally:
        box.close()
    out.wall_s = time.perf_counter() - t_start
    return out
