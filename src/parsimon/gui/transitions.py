"""The transition log: (state, action, next state) records of every executed step, for world models.

:class:`TransitionRecorder` appends one JSON line per executed action to ``transitions.jsonl``::

    {"episode": "miniwob/click-button#3", "task": ..., "seed": 3, "step": 1,
     "state": {...}, "action": {...}, "next_state": {...}, "reward": 1.0, "terminated": true, ...}

A state holds the URL, the goal, the accessibility tree, the element table, the app's own state
(our apps), and references to the screenshot (``shots/<sha256>.png``) and the frozen DOM
(``dom/<sha256>.html``): files named by their content's hash, so a page seen twice is stored once.
Everything needed to learn p(next state | state, action) and to render a predicted next state from a
frozen DOM is kept; nothing is summarised away.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["TransitionRecorder", "read_transitions", "state_record"]


def _store(root: Path, folder: str, data: bytes, suffix: str) -> str | None:
    if not data:
        return None
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{folder}/{digest}{suffix}"
    path = root / rel
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return rel


def state_record(obs: Any, root: Path | None = None, app_state: Any = None) -> dict[str, Any]:
    """A JSON-ready state: URL, goal, tree, element table, app state, stored screenshot and DOM."""
    rec: dict[str, Any] = {"url": obs.url, "goal": obs.goal, "title": obs.title, "size": list(obs.size),
                           "axtree": obs.axtree, "focused": obs.focused,
                           "screenshot_sha256": obs.screenshot_sha256 if obs.screenshot else None,
                           "elements": [{k: v for k, v in dataclasses.asdict(e).items() if v not in (None, False, "")}
                                        for e in obs.elements]}
    if app_state is not None:
        rec["app_state"] = app_state
    if root is not None:
        rec["screenshot"] = _store(root, "shots", obs.screenshot, ".png")
        rec["dom"] = _store(root, "dom", obs.dom.encode("utf-8"), ".html") if obs.dom else None
    return rec


class TransitionRecorder:
    """Append transitions under ``root`` (``transitions.jsonl``, ``shots/``, ``dom/``); thread-safe."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "transitions.jsonl"
        self._lock = threading.Lock()

    def record(self, *, episode: str, task: str, seed: int, step: int, state: Any, action: Any, next_state: Any,
               reward: float, terminated: bool, truncated: bool, info: dict[str, Any],
               app_state: Any = None, next_app_state: Any = None) -> None:
        """Write one transition (``state`` and ``next_state`` are observations)."""
        rec = {"episode": episode, "task": task, "seed": seed, "step": step,
               "state": state_record(state, self.root, app_state),
               "action": action.to_dict() if action is not None else None,
               "next_state": state_record(next_state, self.root, next_app_state),
               "reward": reward, "terminated": terminated, "truncated": truncated,
               "info": {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool, type(None)))}}
        line = json.dumps(rec, sort_keys=True, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def read_transitions(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of ``<root>/transitions.jsonl``."""
    path = Path(root) / "transitions.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
