"""``trajectories.jsonl``: one finished episode per line, appended as episodes finish (what a resume reads)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from parsimon.cta.base import Episode, StepRecord
from parsimon.cta.metrics import json_ready
from parsimon.errors import ConfigError

__all__ = ["TRAJECTORIES_FILE", "append_trajectories", "episode_row", "read_trajectories"]

TRAJECTORIES_FILE = "trajectories.jsonl"


def episode_row(e: Episode) -> dict[str, Any]:
    """One episode as the JSON object of its ``trajectories.jsonl`` line."""
    return json_ready({"index": e.index, "task_id": e.task_id, "actions": e.actions, "reward": e.reward,
                   "optimal": e.optimal, "matched": e.summary.get("matched"), "group": e.group,
                   "summary": e.summary, "stats": e.stats, "steps": [asdict(s) for s in e.steps]})


def append_trajectories(path: str | Path, episodes: list[Episode], *, fresh: bool = False) -> None:
    """Append ``episodes`` to ``path`` (``fresh``: start the file anew), one line each, flushed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w" if fresh else "a", encoding="utf-8") as fh:
        for e in episodes:
            fh.write(json.dumps(episode_row(e)) + "\n")
        fh.flush()


def read_trajectories(path: str | Path) -> list[Episode]:
    """Episodes from a ``trajectories.jsonl`` written by :func:`parsimon.cta.evaluate` (a torn last line, left by
    an interruption in the middle of a write, is ignored: that episode simply runs again)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    out = []
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ep = Episode(task_id=d["task_id"], actions=d["actions"], reward=d["reward"],
                         steps=[StepRecord(**s) for s in d["steps"]], summary=d["summary"], optimal=d["optimal"],
                         group=d["group"], stats=d.get("stats") or {}, index=d["index"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            if ln == len(lines):
                break
            raise ConfigError(f"{path}:{ln}: not an episode ({exc}); move the file away to start over") from None
        out.append(ep)
    return out
