"""The desktop suite's tasks: the Notes app's grammar, seeded scenarios and the saved-state oracle.

Kept apart from :mod:`parsimon.gui.desktop.env` so that listing suites needs neither an X server nor
Gymnasium.
"""

from __future__ import annotations

import random
import re
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.suites.base import SUITES, Suite, TaskStatus

__all__ = ["DesktopSuite", "DesktopTask", "parse_notes_instruction", "render_notes_instruction"]

_NAMES = ["Ada", "Grace", "Linus", "Margaret", "Barbara", "Ken"]
_NOTES = ["groceries", "meeting notes", "ideas", "recipes", "travel", "reading list", "gift list", "workout"]


class DesktopTask:
    """A Notes task: a seeded scenario and ``length - 1`` edits followed by save (slot ``notes-L<length>-<k>``)."""

    suite, platform, max_steps = "desktop", "computer", 25

    def __init__(self, name: str) -> None:
        m = re.fullmatch(r"notes-L(\d)-(\d+)", name)
        if not m or not 2 <= int(m.group(1)) <= 5:
            raise ConfigError(f"`task` must look like notes-L<2-5>-<k> (edits, then save), got {name!r}")
        self.name, self.length = name, int(m.group(1))
        self.scenario: dict = {}
        self.steps: list[tuple[str, str]] = []
        self.expected: dict = {}

    @property
    def id(self) -> str:
        """``desktop/<name>``."""
        return f"desktop/{self.name}"

    def instance(self, seed: int) -> tuple[dict, list[tuple[str, str]]]:
        """The scenario and the steps for ``seed``: ``length - 1`` edits, then save."""
        rng = random.Random(f"{self.name}:{seed}")
        scen = {"name": rng.choice(_NAMES), "sync": rng.random() < 0.5, "notes": rng.sample(_NOTES[:5], 3)}
        edits = [("name", rng.choice([n for n in _NAMES if n != scen["name"]])),
                 ("sync", "off" if scen["sync"] else "on"), ("add", rng.choice(_NOTES[5:])),
                 ("delete", rng.choice(scen["notes"]))]
        rng.shuffle(edits)
        return scen, edits[: self.length - 1] + [("save", "")]

    def start(self, seed: int) -> str:
        """Prepare the episode; return the instruction."""
        self.scenario, self.steps = self.instance(seed)
        exp = {"name": self.scenario["name"], "sync": self.scenario["sync"], "notes": list(self.scenario["notes"])}
        for kind, arg in self.steps:
            if kind == "name":
                exp["name"] = arg
            elif kind == "sync":
                exp["sync"] = arg == "on"
            elif kind == "add":
                exp["notes"].append(arg)
            elif kind == "delete":
                exp["notes"].remove(arg)
        self.expected = exp
        return render_notes_instruction(self.steps)

    def status(self, state: dict | None, ended: bool) -> TaskStatus:
        """Solved when the saved state equals the expected one."""
        ok = bool(state) and state.get("saved") == self.expected
        return TaskStatus(1.0 if ok and ended else 0.0, ended, ok and ended, {"solved_now": ok})

    def irreversible(self, page: Any, action: Any, element: Any) -> bool:
        """Nothing in Notes is irreversible."""
        return False

    def state(self, page: Any) -> None:
        """The desktop state travels with the observation instead."""
        return None


_TEMPLATES = {"name": 'change the profile name to "{}"', "sync": "turn sync {}", "add": 'add the note "{}"',
              "delete": 'delete the note "{}"', "save": "save"}


def render_notes_instruction(steps: list[tuple[str, str]]) -> str:
    """``In the Notes app, <step>, then <step>, ... .``"""
    return "In the Notes app, " + ", then ".join(_TEMPLATES[k].format(a) for k, a in steps) + "."


def parse_notes_instruction(text: str) -> list[tuple[str, str]]:
    """The inverse of :func:`render_notes_instruction`."""
    m = re.fullmatch(r"In the Notes app, (.*)\.", text.strip())
    if not m:
        raise ConfigError(f"not a Notes instruction: {text!r}")
    out = []
    for clause in m.group(1).split(", then "):
        for kind, tpl in _TEMPLATES.items():
            rx = "^" + re.escape(tpl).replace(r"\{\}", "(.+?)") + "$"
            hit = re.match(rx, clause)
            if hit:
                out.append((kind, hit.group(1) if hit.groups() else ""))
                break
        else:
            raise ConfigError(f"cannot read the step {clause!r}")
    return out


class DesktopSuite(Suite):
    """The Notes app on an X display: slots ``notes-L<2-5>-<k>`` (k < 6)."""

    name = "desktop"

    def task_names(self) -> list[str]:  # noqa: D102
        return [f"notes-L{n}-{k}" for n in range(2, 6) for k in range(6)]

    def task(self, name: str) -> DesktopTask:  # noqa: D102
        return DesktopTask(name)

    def make_env(self, **kwargs: Any) -> Any:  # noqa: D102
        from parsimon.gui.desktop.env import DesktopEnv

        return DesktopEnv(**kwargs)


SUITES.register("desktop", DesktopSuite, describe="a Tk app on a private X display (Xvfb + xdotool)")
