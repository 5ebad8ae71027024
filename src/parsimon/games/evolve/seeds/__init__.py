"""Starting programs of the evolution loop.

``cfr_plus`` (the paper's seed) is a source file next to this module; ``cfr`` (vanilla CFR) is the same
program with two SEARCH/REPLACE edits (no regret floor, uniform averaging), the form in which the loop's
mutators change programs.
"""

from __future__ import annotations

from importlib import resources

from parsimon.errors import ConfigError

__all__ = ["SEEDS", "load_seed"]

#: Vanilla CFR as edits of the CFR+ program: (search, replace) pairs, each matching exactly once.
_CFR_EDITS = (
    ("CFR+ in the per-infoset interface (the seed program of the evolutionary search).",
     "Vanilla CFR in the per-infoset interface (regret matching, uniform averaging)."),
    ("Regret matching+: add the instantaneous regrets, floor the sum at zero.",
     "Add the instantaneous regrets (no flooring)."),
    ("a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])",
     "a: info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a]"),
    ("Regret matching on the (already updated) cumulative regrets; uniform when none is positive.",
     "Regret matching on the positive part of the cumulative regrets."),
    ("Linear averaging: weight (t + 1) times the player's own reach.",
     "Uniform averaging: weight 1 times the player's own reach."),
    ("w = (iteration_number + 1) * reach_prob", "w = 1.0 * reach_prob"),
)

#: name -> (source file, edits applied to it)
SEEDS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "cfr_plus": ("cfr_plus.py", ()),
    "cfr": ("cfr_plus.py", _CFR_EDITS),
}


def load_seed(name: str) -> str:
    """Source text of a named starting program (``cfr_plus`` = the paper's seed, ``cfr`` = vanilla CFR)."""
    if name not in SEEDS:
        raise ConfigError(f"`program` must be one of {sorted(SEEDS)} or a .py file, got {name!r}")
    path, edits = SEEDS[name]
    source = resources.files(__name__).joinpath(path).read_text()
    for search, replace in edits:
        if source.count(search) != 1:  # pragma: no cover - guards an edit of cfr_plus.py
            raise ConfigError(f"starting program {name!r}: an edit no longer matches {path} exactly once")
        source = source.replace(search, replace)
    return source
