"""Options and helpers shared by the ``parsimon games`` commands (light: no OpenSpiel, no torch)."""

from __future__ import annotations

from pathlib import Path

import typer

from parsimon.games.engine import MAX_NODES

__all__ = ["game_argument", "max_nodes_option", "plot_curves", "split_games"]


def max_nodes_option():
    """``--max-nodes``: the size cap checked (by estimate) before a game is compiled."""
    return typer.Option(None, "--max-nodes", min=1, help=f"Refuse a game estimated to have more histories than "
                        f"this before compiling it (default {MAX_NODES:,}; memory grows about 1 kB per history).")


def game_argument():
    """``GAME``: an OpenSpiel game string."""
    return typer.Argument(..., help="OpenSpiel game string, e.g. 'leduc_poker' or 'kuhn_poker(players=3)'.")


def split_games(s: str) -> list[str]:
    """Split on commas that are not inside parentheses; blank items are dropped."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    out.append(cur)
    return [g.strip() for g in out if g.strip()]


def plot_curves(curves: dict, path: Path, title: str, xlabel: str = "iteration") -> None:
    """Exploitability curves ``{label: [(x, value), ...]}`` on a log scale, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, pts in curves.items():
        ax.plot([p[0] for p in pts], [max(p[1], 1e-17) for p in pts], label=name)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("exploitability")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
