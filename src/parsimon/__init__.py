"""Parsimon: reference implementations of five efficiency-first papers of February 2026.

Subpackages (import the one you need; heavy dependencies load on first use):

- ``parsimon.attention``  SpargeAttention2 hybrid Top-k ∪ Top-p block-sparse attention
- ``parsimon.games``      VAD-CFR, SHOR-PSRO, a vectorised CFR engine and algorithm evolution
- ``parsimon.cta``        Calibrate-Then-Act cost-aware exploration
- ``parsimon.llm``        one OpenAI-compatible client and a local model on loopback
- ``parsimon.governance`` budgets, proof-of-action log, escalation, feedback events
- ``parsimon.report``     the HTML report of ``parsimon reproduce``
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
