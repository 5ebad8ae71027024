"""The world-model contract and its registry.

A world model answers "what would this action change?" for a page: :meth:`WorldModel.predict` takes
the current observation and one action and returns a :class:`Prediction` holding a typed
:class:`~parsimon.gui.world_model.delta.Delta` (stage 1 of CUWM), a confidence in [0, 1], and, once the
:class:`~parsimon.gui.world_model.render.Renderer` has drawn it, the imagined screenshot (stage 2).

Implementations register by name in :data:`WORLD_MODELS`: ``rule`` (hand-written UI semantics),
``learned`` (fit to the transition store), ``llm`` (a chat model through :mod:`parsimon.llm` under a
JSON schema) and ``oracle`` (the action replayed in a scratch copy of the episode: the ground truth).

The model is advisory: the search uses it to choose, the real environment still decides what happens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.world_model.delta import Delta
from parsimon.registry import Registry

__all__ = ["WORLD_MODELS", "Context", "Prediction", "WorldModel", "target_element"]

WORLD_MODELS: Registry = Registry("world_model")


@dataclass
class Context:
    """What a world model may know about the episode besides the page.

    Only the oracle uses it (to replay the episode); the others predict from the page alone.

    Attributes:
        task: The task object (a :class:`~parsimon.gui.suites.base.WebTask`).
        seed: The episode seed.
        history: The actions executed since the reset, in order.
        session: A :class:`~parsimon.gui.web.browser.BrowserSession` to open scratch pages in.
    """

    task: Any = None
    seed: int | None = None
    history: tuple[Action, ...] = ()
    session: Any = None


@dataclass
class Prediction:
    """A world model's answer for one action.

    Attributes:
        action: The action it is about.
        delta: The predicted change (stage 1), with its text summary.
        confidence: The model's probability that ``delta`` is exactly right.
        model: The world model's name.
        seconds: Time the prediction took.
        image: The imagined next screenshot (PNG), once rendered (stage 2).
        render_flags: Why the rendering may be unfaithful (``canvas``, ``scripted-widget``, ...).
        meta: Anything else worth logging.
    """

    action: Action
    delta: Delta
    confidence: float
    model: str
    seconds: float = 0.0
    image: bytes | None = None
    render_flags: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the image left out)."""
        return {"action": self.action.to_dict(), "delta": self.delta.to_dict(), "confidence": self.confidence,
                "model": self.model, "seconds": self.seconds, "render_flags": list(self.render_flags),
                "rendered": self.image is not None, "meta": self.meta}


def target_element(obs: Any, action: Action) -> Any:
    """The element an action points at: its label, or the smallest visible element under its point."""
    t = action.target
    if isinstance(t, Element):
        return obs.element(t.id)
    if isinstance(t, Point):
        w, h = obs.size if obs.size[0] else (1000, 1000)
        x, y = (t.x * w / 1000, t.y * h / 1000) if t.space == "norm1000" else (t.x, t.y)
        best, area = None, float("inf")
        for e in obs.elements:
            bx, by, bw, bh = e.bbox
            if e.visible and bx <= x <= bx + bw and by <= y <= by + bh and bw * bh < area:
                best, area = e, bw * bh
        return best
    return None


class WorldModel(ABC):
    """See the module docstring."""

    name: str = ""

    @abstractmethod
    def predict(self, obs: Any, action: Action, context: Context | None = None) -> Prediction:
        """The predicted change of ``action`` on the page ``obs``."""

    def predict_many(self, obs: Any, actions: list[Action], context: Context | None = None) -> list[Prediction]:
        """Predictions for several candidate actions on the same page (one by one unless overridden)."""
        return [self.predict(obs, a, context) for a in actions]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (a browser, a model client)."""
