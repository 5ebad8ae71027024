"""Intermediate feedback: typed progress events from an agent, filtered by a verbosity policy.

An agent reports through a :class:`FeedbackEmitter` with six methods, one per event kind: ``plan``,
``step_started``, ``step_result`` (which must carry content: a bare "working..." is rejected),
``needs_user``, ``error`` and ``final``. A policy decides which events reach the sinks:

* ``silent_until_final``: only ``final`` and ``needs_user`` (the user must see a question, or the agent
  would wait forever).
* ``plan_and_results``: everything except ``step_started``.
* ``verbose``: everything.
* ``adaptive``: ``plan``, ``needs_user``, ``error`` and ``final`` always; step events while it is
  transparent (until ``quiet_after`` verified successes in a row), and afterwards only the steps that
  deserve attention: low confidence, an action kind not seen before, an irreversible action (its start
  and its result), and everything again after a failure (an ``error`` or an unverified result resets
  the streak).

Policies are resolved by name through :data:`POLICIES`; a policy object with ``should_emit(event)``
can be passed directly. Sinks: :class:`CallbackSink`, :class:`JsonlSink`, :class:`TerminalSink`.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "KINDS", "POLICIES", "AdaptivePolicy", "CallbackSink", "FeedbackEmitter", "FeedbackEvent", "JsonlSink",
    "PlanAndResultsPolicy", "SilentUntilFinalPolicy", "TerminalSink", "VerbosePolicy", "resolve_policy",
]

KINDS = ("plan", "step_started", "step_result", "needs_user", "error", "final")
_PLACEHOLDER = re.compile(r"^\s*(working|thinking|processing|loading|running|in progress|please wait|busy|"
                          r"one moment|doing stuff)\s*(on it)?\s*(\.{2,}|…)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FeedbackEvent:
    """One progress event."""

    kind: str  # one of KINDS
    message: str  # what a person reads
    data: dict = field(default_factory=dict)  # machine-readable details ("action", "verified", ...)
    step: int | None = None
    confidence: float | None = None  # the agent's confidence in [0, 1], if it has one
    irreversible: bool = False
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {sorted(KINDS)}, got {self.kind!r}")
        if not isinstance(self.message, str) or not self.message.strip():
            raise ValueError(f"`message` must be a non-empty string, got {self.message!r}")
        if self.kind == "step_result" and _PLACEHOLDER.match(self.message):
            raise ValueError(f"a step_result `message` must say what the step found or did, got {self.message!r}")
        if not isinstance(self.data, dict):
            raise ValueError(f"`data` must be a dict, got {type(self.data).__name__}")
        if self.confidence is not None and not (isinstance(self.confidence, (int, float))
                                                and math.isfinite(self.confidence) and 0 <= self.confidence <= 1):
            raise ValueError(f"`confidence` must be in [0, 1] or None, got {self.confidence!r}")

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict."""
        return asdict(self)


class FeedbackPolicy(Protocol):
    """Decides whether an event reaches the sinks; may update its own state."""

    def should_emit(self, event: FeedbackEvent) -> bool: ...


class _KindsPolicy:
    kinds: frozenset[str] = frozenset()

    def should_emit(self, event: FeedbackEvent) -> bool:
        """True when the event's kind is one this policy shows."""
        return event.kind in self.kinds


class SilentUntilFinalPolicy(_KindsPolicy):
    """Only ``final`` and ``needs_user``."""

    kinds = frozenset({"final", "needs_user"})


class PlanAndResultsPolicy(_KindsPolicy):
    """Everything except ``step_started``."""

    kinds = frozenset({"plan", "step_result", "needs_user", "error", "final"})


class VerbosePolicy(_KindsPolicy):
    """Every event."""

    kinds = frozenset(KINDS)


class AdaptivePolicy:
    """Transparent at first, quieter after a streak of verified successes, louder when it matters.

    Args:
        quiet_after: Verified successes in a row after which routine steps are no longer shown.
        low_confidence: Step events with a confidence below this are always shown.

    The action kind of a step is read from ``event.data["action"]``; a ``step_result`` counts as a
    verified success when ``event.data["verified"]`` is True and as a failure when it is False.
    """

    def __init__(self, quiet_after: int = 3, low_confidence: float = 0.6):
        if isinstance(quiet_after, bool) or not isinstance(quiet_after, int) or quiet_after < 0:
            raise ValueError(f"`quiet_after` must be an int >= 0, got {quiet_after!r}")
        if not 0 <= low_confidence <= 1:
            raise ValueError(f"`low_confidence` must be in [0, 1], got {low_confidence!r}")
        self.quiet_after, self.low_confidence = quiet_after, low_confidence
        self.streak = 0  # verified successes since the last failure
        self.seen: set[str] = set()  # action kinds already performed
        self._loud_steps: set[Any] = set()  # steps whose start was shown for a reason: show the result too

    def should_emit(self, event: FeedbackEvent) -> bool:
        """Decide for one event and update the streak and the set of known actions."""
        if event.kind in ("plan", "needs_user", "final"):
            return True
        if event.kind == "error":
            self.streak = 0
            return True
        action = event.data.get("action")
        novel = action is not None and action not in self.seen
        unsure = event.confidence is not None and event.confidence < self.low_confidence
        transparent = self.streak < self.quiet_after
        loud = transparent or novel or unsure or event.irreversible
        if event.kind == "step_started":
            if loud and event.step is not None:
                self._loud_steps.add(event.step)
        else:  # step_result
            verified = event.data.get("verified")
            failed = verified is False
            loud = loud or failed or event.step in self._loud_steps
            self._loud_steps.discard(event.step)
            self.streak = 0 if failed else self.streak + (verified is True)
        if action is not None:
            self.seen.add(action)
        return loud


POLICIES: dict[str, Callable[..., FeedbackPolicy]] = {
    "adaptive": AdaptivePolicy,
    "plan_and_results": PlanAndResultsPolicy,
    "silent_until_final": SilentUntilFinalPolicy,
    "verbose": VerbosePolicy,
}


def resolve_policy(policy: str | FeedbackPolicy, **kwargs: Any) -> FeedbackPolicy:
    """Return the policy named ``policy`` (built with ``kwargs``), or ``policy`` itself if it is one."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"`policy` must be one of {sorted(POLICIES)}, got {policy!r}")
        return POLICIES[policy](**kwargs)
    if not callable(getattr(policy, "should_emit", None)):
        raise ValueError(f"`policy` must be one of {sorted(POLICIES)} or have a should_emit method, got {policy!r}")
    if kwargs:
        raise ValueError(f"settings {sorted(kwargs)} apply only to a policy given by name")
    return policy


class CallbackSink:
    """Calls ``fn(event)`` for each emitted event."""

    def __init__(self, fn: Callable[[FeedbackEvent], Any]):
        if not callable(fn):
            raise ValueError(f"`fn` must be callable, got {fn!r}")
        self.fn = fn

    def emit(self, event: FeedbackEvent) -> None:
        """Pass the event to the callback."""
        self.fn(event)


class JsonlSink:
    """Appends each emitted event to a JSONL file (one JSON object per line, flushed per event)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, event: FeedbackEvent) -> None:
        """Write one line."""
        line = json.dumps(event.as_dict(), sort_keys=True, ensure_ascii=False, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)


class TerminalSink:
    """Prints each emitted event on a rich console, styled by kind."""

    _STYLE = {"plan": ("plan", "bold cyan"), "step_started": ("→", "dim"), "step_result": ("✓", "green"),
              "needs_user": ("?", "bold yellow"), "error": ("✗", "bold red"), "final": ("done", "bold green")}

    def __init__(self, console: Any = None):
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console

    def emit(self, event: FeedbackEvent) -> None:
        """Print one line (plus the plan's steps, if any)."""
        from rich.markup import escape

        label, style = self._STYLE[event.kind]
        if event.kind == "step_result" and event.data.get("verified") is False:
            label, style = "!", "yellow"
        step = f"[{event.step}] " if event.step is not None else ""
        extra = f" (confidence {event.confidence:.2f})" if event.confidence is not None else ""
        warn = " [irreversible]" if event.irreversible else ""
        self.console.print(f"[{style}]{label}[/] {step}{escape(event.message)}{escape(extra)}{escape(warn)}")
        for i, item in enumerate(event.data.get("steps") or [], 1):
            self.console.print(f"    {i}. {escape(str(item))}")


class FeedbackEmitter:
    """Builds :class:`FeedbackEvent` objects and sends those the policy lets through to the sinks.

    Args:
        policy: A name in :data:`POLICIES` or a policy object.
        sinks: Sinks (objects with ``emit(event)``) or plain callables.
        **policy_kwargs: Settings of a policy given by name (e.g. ``quiet_after=2``).

    Attributes:
        emitted: Counts of emitted events per kind.
        suppressed: Counts of suppressed events per kind.
    """

    def __init__(self, policy: str | FeedbackPolicy = "adaptive", sinks: Iterable[Any] = (), **policy_kwargs: Any):
        self.policy = resolve_policy(policy, **policy_kwargs)
        self.sinks = [s if callable(getattr(s, "emit", None)) else CallbackSink(s) for s in sinks]
        self.emitted: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()

    def emit(self, event: FeedbackEvent) -> bool:
        """Send ``event`` to the sinks if the policy allows; return whether it was sent."""
        if not self.policy.should_emit(event):
            self.suppressed[event.kind] += 1
            return False
        self.emitted[event.kind] += 1
        for sink in self.sinks:
            sink.emit(event)
        return True

    @staticmethod
    def _data(data: dict | None, **extra: Any) -> dict:
        out = dict(data or {})
        out.update({k: v for k, v in extra.items() if v is not None})
        return out

    def plan(self, message: str, *, steps: list[str] | None = None, data: dict | None = None) -> bool:
        """Announce the plan (``steps``: its items, shown as a list)."""
        return self.emit(FeedbackEvent("plan", message, self._data(data, steps=steps)))

    def step_started(self, message: str, *, step: int | None = None, action: str | None = None,
                     confidence: float | None = None, irreversible: bool = False, data: dict | None = None) -> bool:
        """A step begins (``action``: its kind, e.g. "click")."""
        return self.emit(FeedbackEvent("step_started", message, self._data(data, action=action), step, confidence,
                                       irreversible))

    def step_result(self, message: str, *, step: int | None = None, action: str | None = None,
                    verified: bool | None = None, confidence: float | None = None,
                    irreversible: bool = False, data: dict | None = None) -> bool:
        """What a step found or did; ``verified`` says whether its effect was checked (True/False/None)."""
        return self.emit(FeedbackEvent("step_result", message, self._data(data, action=action, verified=verified),
                                       step, confidence, irreversible))

    def needs_user(self, message: str, *, data: dict | None = None) -> bool:
        """The agent needs an answer or an approval from the user."""
        return self.emit(FeedbackEvent("needs_user", message, self._data(data)))

    def error(self, message: str, *, step: int | None = None, data: dict | None = None) -> bool:
        """Something failed."""
        return self.emit(FeedbackEvent("error", message, self._data(data), step))

    def final(self, message: str, *, data: dict | None = None) -> bool:
        """The outcome of the whole task."""
        return self.emit(FeedbackEvent("final", message, self._data(data)))
