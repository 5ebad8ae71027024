"""Run and workflow scopes: which run and workflow a cost event or an audit record belongs to.

A scope is carried by :mod:`contextvars`, so it follows ``asyncio`` tasks and is private to each thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Scope", "current_scope", "new_run_id", "run_scope"]


@dataclass(frozen=True)
class Scope:
    """The run and workflow in force (either may be None outside every :func:`run_scope`)."""

    run: str | None = None
    workflow: str | None = None


_EMPTY = Scope()
_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("parsimon_governance_scope", default=None)


def new_run_id() -> str:
    """Return a fresh run id, ``run-<UTC yyyymmddThhmmss>-<8 hex>``, e.g. ``run-20260301T120000-1a2b3c4d``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"run-{stamp}-{secrets.token_hex(4)}"


def current_scope() -> Scope:
    """Return the innermost :class:`Scope` (``Scope(None, None)`` outside every :func:`run_scope`)."""
    return _SCOPE.get() or _EMPTY


@contextlib.contextmanager
def run_scope(run: str | None = None, workflow: str | None = None) -> Iterator[Scope]:
    """Tag every ledger charge and audit record made inside the block with a run and a workflow.

    Args:
        run: The run id. None keeps the enclosing scope's run, or, when no run is set anywhere,
            creates a new one with :func:`new_run_id`.
        workflow: The workflow name. None keeps the enclosing scope's workflow (possibly None).

    Yields:
        The :class:`Scope` in force inside the block.

    Example:
        >>> with run_scope("run-a", workflow="triage") as outer:
        ...     with run_scope(workflow="reply") as inner:
        ...         (inner.run, inner.workflow)
        ('run-a', 'reply')
    """
    for name, value in (("run", run), ("workflow", workflow)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"`{name}` must be a non-empty string or None, got {value!r}")
    outer = current_scope()
    scope = Scope(
        run=run if run is not None else (outer.run if outer.run is not None else new_run_id()),
        workflow=workflow if workflow is not None else outer.workflow,
    )
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
