"""Seed programs of the evolution loop (source files next to this module)."""

from __future__ import annotations

from importlib import resources

from parsimon.errors import ConfigError

SEEDS = {"cfr_plus": "cfr_plus.py", "cfr": "cfr.py"}


def load_seed(name: str) -> str:
    """Source text of a named seed (``cfr_plus`` = the paper's seed, ``cfr`` = vanilla CFR)."""
    if name not in SEEDS:
        raise ConfigError(f"unknown seed {name!r}; accepted values: {', '.join(SEEDS)}")
    return resources.files(__name__).joinpath(SEEDS[name]).read_text()
