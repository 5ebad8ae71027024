"""Evolution of game-solving programs (the paper's AlphaEvolve-style loop): program database with islands,
LLM / offline SEARCH-REPLACE mutation, sandboxed cascaded evaluation, checkpointed loop."""

from __future__ import annotations

from .database import Program, ProgramDatabase
from .evaluate import Evaluation, Evaluator
from .loop import EvolveConfig, EvolveResult, evolve
from .mutate import EditError, LLMMutator, OfflineMutator, apply_edits, build_prompt, parse_search_replace
from .sandbox import Limits, SandboxResult, run_sandboxed
from .seeds import SEEDS, load_seed

__all__ = [
    "Program", "ProgramDatabase", "Evaluation", "Evaluator", "EvolveConfig", "EvolveResult", "evolve",
    "EditError", "LLMMutator", "OfflineMutator", "apply_edits", "build_prompt", "parse_search_replace",
    "Limits", "SandboxResult", "run_sandboxed", "SEEDS", "load_seed",
]
