"""The transition store: every logged (state, action, next state) of the GUI agent, read back for learning.

The agent loop's :class:`~parsimon.gui.transitions.TransitionRecorder` writes ``transitions.jsonl`` with
the screenshots and frozen DOMs beside it (``shots/``, ``dom/``). A *store* is any set of folders: every
``transitions.jsonl`` found below them is one source (an evaluation run's ``transitions/`` folder, a
collection run, the default store ``$PARSIMON_HOME/gui/transitions``). This is the data flywheel: each
run adds transitions, and ``parsimon gui wm train`` retrains on all of them.

The world-model search also appends to ``predictions.jsonl`` in the store it writes to: for each
executed action, the predicted delta, the true one and the error (see
:func:`parsimon.gui.world_model.search.SearchPolicy`).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.web.observe import ElementInfo, Observation

__all__ = ["Transition", "TransitionStore", "default_store", "observation_from_record", "png_array"]


def default_store() -> Path:
    """``$PARSIMON_HOME/gui/transitions``, the store runs write to when none is named."""
    from parsimon.paths import home

    return home() / "gui" / "transitions"


def _element(d: dict[str, Any]) -> ElementInfo:
    # the recorder drops falsy fields (so a label or a parent of 0 is missing): put the defaults back
    d = dict(d)
    d.setdefault("pid", 0)
    d.setdefault("tag", "")
    d.setdefault("role", "generic")
    d.setdefault("visible", False)
    known = set(ElementInfo.__dataclass_fields__)
    return ElementInfo.from_js({k: v for k, v in d.items() if k in known})


def observation_from_record(rec: dict[str, Any], root: Path, *, screenshot: bool = True) -> Observation:
    """An :class:`Observation` rebuilt from a state record of the transition log."""
    dom = ""
    if rec.get("dom"):
        dom = (root / rec["dom"]).read_text(encoding="utf-8")
    png = b""
    if screenshot and rec.get("screenshot"):
        path = root / rec["screenshot"]
        png = path.read_bytes() if path.is_file() else b""
    elements = tuple(_element(e) for e in rec.get("elements") or [])
    size = tuple(rec.get("size") or (0, 0))
    return Observation(goal=rec.get("goal", ""), url=rec.get("url", ""), screenshot=png, size=(int(size[0]), int(size[1])),
                       elements=elements, axtree=rec.get("axtree", ""), dom=dom, title=rec.get("title", ""),
                       focused=rec.get("focused"), extra={"app_state": rec.get("app_state")})


@dataclass
class Transition:
    """One logged step: the state, the action, the next state, and how the episode stood."""

    episode: str
    task: str
    seed: int
    step: int
    state: Observation
    action: Action
    next_state: Observation
    reward: float
    terminated: bool
    success: bool
    source: str = ""  # the transitions.jsonl it came from
    meta: dict = field(default_factory=dict)

    @property
    def suite(self) -> str:
        """The task's suite (``miniwob``, ``apps``, ...)."""
        return self.task.split("/")[0]

    @property
    def task_name(self) -> str:
        """The task's name inside its suite."""
        return self.task.split("/", 1)[-1]


class TransitionStore:
    """The transitions below one or more folders (see the module docstring).

    Args:
        roots: Folders searched recursively for ``transitions.jsonl``; the first is where new runs and
            prediction logs are written.
    """

    def __init__(self, roots: str | os.PathLike | Iterable[str | os.PathLike]) -> None:
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.roots = [Path(r) for r in roots]
        if not self.roots:
            raise ConfigError("`roots` must name at least one folder")

    @property
    def root(self) -> Path:
        """Where this store writes."""
        return self.roots[0]

    def files(self) -> list[Path]:
        """Every ``transitions.jsonl`` below the roots, in path order."""
        out: list[Path] = []
        for r in self.roots:
            if r.is_file() and r.name == "transitions.jsonl":
                out.append(r)
            elif r.is_dir():
                out.extend(sorted(r.rglob("transitions.jsonl")))
        return list(dict.fromkeys(out))

    def run_dir(self, name: str) -> Path:
        """A fresh folder ``<root>/<name>`` for a run's transitions."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def __len__(self) -> int:
        n = 0
        for f in self.files():
            with open(f, encoding="utf-8") as fh:
                n += sum(1 for line in fh if line.strip())
        return n

    def transitions(self, *, screenshots: bool = False, limit: int | None = None) -> Iterator[Transition]:
        """Every logged transition, oldest first within each file (``screenshots``: load the PNGs too).

        Records whose action is missing or whose DOMs were not logged are skipped (a world model cannot
        learn from them), as are records written by another version of the log that cannot be read.
        """
        n = 0
        for path in self.files():
            root = path.parent
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if rec.get("action") is None or not rec["state"].get("dom") or not rec["next_state"].get("dom"):
                        continue
                    info = rec.get("info") or {}
                    yield Transition(
                        episode=rec["episode"], task=rec["task"], seed=int(rec["seed"]), step=int(rec["step"]),
                        state=observation_from_record(rec["state"], root, screenshot=screenshots),
                        action=Action.from_dict(rec["action"]),
                        next_state=observation_from_record(rec["next_state"], root, screenshot=screenshots),
                        reward=float(rec.get("reward", 0.0)), terminated=bool(rec.get("terminated")),
                        success=bool(info.get("success")), source=str(path),
                        meta={"app_state": rec["state"].get("app_state"),
                              "next_app_state": rec["next_state"].get("app_state"),
                              "solved_now": info.get("solved_now")})
                    n += 1
                    if limit is not None and n >= limit:
                        return

    def log_prediction(self, record: dict[str, Any]) -> None:
        """Append one prediction-error record to ``<root>/predictions.jsonl``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "predictions.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")

    def predictions(self) -> list[dict[str, Any]]:
        """Every prediction-error record below the roots."""
        out: list[dict[str, Any]] = []
        for r in self.roots:
            for path in sorted(r.rglob("predictions.jsonl")) if r.is_dir() else []:
                with open(path, encoding="utf-8") as fh:
                    out.extend(json.loads(line) for line in fh if line.strip())
        return out


def png_array(png: bytes) -> Any:
    """A PNG as an RGB ``uint8`` array."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
