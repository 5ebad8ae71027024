"""Game solving: a compiled, vectorised CFR engine (numpy / torch), exact best responses, VAD-CFR.

Public API: :func:`solve`, :class:`SolveResult`, :func:`exploitability`, :func:`nash_conv`,
:func:`compile_game`, :func:`best_response`, :class:`TabularPolicy`, :func:`run_candidate`, and (when the
PSRO module is present) :func:`psro` / :class:`PSROResult`.
"""

from __future__ import annotations

from .best_response import best_response, exploitability, nash_conv, policy_value
from .candidate import run_candidate
from .engine import CompiledGame, NotPerfectRecall, UnknownGame, compile_game
from .policy import TabularPolicy
from .rules import ALGORITHMS, make_rule
from .solve import SolveConfig, SolveResult, solve

__all__ = [
    "solve", "SolveConfig", "SolveResult", "exploitability", "nash_conv", "best_response", "policy_value",
    "compile_game", "CompiledGame", "TabularPolicy", "run_candidate", "ALGORITHMS", "make_rule",
    "NotPerfectRecall", "UnknownGame",
]

try:  # PSRO lives in its own module (parsimon.games.psro), present when that part is installed
    from .psro import PSROConfig, PSROResult, psro  # noqa: F401

    __all__ += ["psro", "PSROConfig", "PSROResult"]
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the psro module being there
    if _exc.name != f"{__name__}.psro":
        raise
