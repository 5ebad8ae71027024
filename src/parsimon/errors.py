"""One error hierarchy for the whole library, rooted at :class:`ParsimonError`."""

from __future__ import annotations

__all__ = [
    "ParsimonError",
    "DependencyNotInstalled",
    "InvalidAction",
    "BudgetExceeded",
    "ResetNeeded",
    "LLMError",
    "MalformedReply",
    "AuditError",
    "ConfigError",
    "StoreError",
]


class ParsimonError(Exception):
    """Base class of every error Parsimon raises on purpose."""


class ConfigError(ParsimonError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DependencyNotInstalled(ParsimonError, ImportError):
    """An optional dependency (an extra) is needed for this feature and is missing."""

    def __init__(self, package: str, extra: str, feature: str = ""):
        self.package, self.extra = package, extra
        what = f" for {feature}" if feature else ""
        super().__init__(
            f"`{package}` is needed{what} but is not installed; install it with "
            f"`pip install 'parsimon[{extra}]'`"
        )


class InvalidAction(ParsimonError, ValueError):
    """An agent proposed an action the environment does not accept."""


class BudgetExceeded(ParsimonError):
    """A hard budget would be crossed by the proposed action; the action was not taken."""


class ResetNeeded(ParsimonError):
    """``step`` was called on an environment that has terminated or was never reset."""


class LLMError(ParsimonError):
    """An LLM endpoint failed after all retries, or refused the request."""


class MalformedReply(LLMError):
    """An LLM endpoint answered with something that is not a valid chat completion."""


class AuditError(ParsimonError):
    """The proof-of-action log is corrupt or cannot be written."""


class StoreError(ParsimonError):
    """The governance store (SQLite) cannot be opened or read: not a database, locked, unreadable."""


def require(module: str, extra: str, feature: str = ""):
    """Import ``module`` or raise :class:`DependencyNotInstalled` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyNotInstalled(module, extra, feature) from exc
