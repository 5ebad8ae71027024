"""One registry shape for every named choice: a name → factory mapping whose errors list the accepted names.

Attention backends and modes, games algorithms and meta-solvers, CTA environments and policies, GUI
policies and suites all use :class:`Registry`. The command line takes its ``--help`` choices and its
error messages from the same object, so they cannot drift from what the library accepts.

Example:
    >>> BACKENDS = Registry("backend")
    >>> BACKENDS.register("numpy", lambda: "np", describe="CPU arrays")
    >>> BACKENDS.get("numpy")()
    'np'
    >>> BACKENDS.names()
    ['numpy']
    >>> try:
    ...     BACKENDS.get("jax")
    ... except Exception as exc:
    ...     print(exc)
    `backend` must be one of ['numpy'], got 'jax'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from parsimon.errors import ConfigError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: its factory (or value) and a one-line description for ``--help``."""

    name: str
    factory: T
    describe: str = ""


class Registry(Generic[T]):
    """A name → factory mapping for one kind of choice.

    Args:
        kind: What is being chosen, as the argument is called (``"backend"``, ``"algo"``); it opens every
            error message, so the user knows which argument was wrong.
        entries: Optional initial ``{name: factory}``.
    """

    def __init__(self, kind: str, entries: dict[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        for name, factory in (entries or {}).items():
            self.register(name, factory)

    def register(self, name: str, factory: T, *, describe: str = "", replace: bool = False) -> T:
        """Add ``name``; a second registration of the same name raises unless ``replace`` is true."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not replace:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, describe)
        return factory

    def __call__(self, name: str, *, describe: str = "") -> Callable[[T], T]:
        """Decorator form: ``@REGISTRY("name", describe=...)``."""
        def deco(factory: T) -> T:
            return self.register(name, factory, describe=describe)

        return deco

    def get(self, name: str) -> T:
        """The factory registered as ``name``; :class:`ConfigError` listing the accepted names otherwise."""
        try:
            return self._entries[name].factory
        except (KeyError, TypeError):
            raise ConfigError(f"`{self.kind}` must be one of {self.names()}, got {name!r}") from None

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name`` (same error as :meth:`get`)."""
        self.get(name)
        return self._entries[name]

    def resolve(self, name_or_obj: str | T) -> T:
        """A registered name's factory, or a non-string object passed through unchanged (a callable)."""
        if isinstance(name_or_obj, str):
            return self.get(name_or_obj)
        return name_or_obj

    def check(self, name: str) -> str:
        """Return ``name`` if it is registered, else raise the registry's error."""
        self.get(name)
        return name

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """``{name: description}`` in sorted order."""
        return {n: self._entries[n].describe for n in self.names()}

    def help(self, prefix: str = "") -> str:
        """A help sentence listing the choices (for a CLI option's ``help=``)."""
        return f"{prefix}{' ' if prefix else ''}One of: {', '.join(self.names())}."

    def items(self) -> Iterable[tuple[str, T]]:
        """``(name, factory)`` pairs in sorted order."""
        return [(n, self._entries[n].factory) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    def as_dict(self) -> dict[str, Any]:
        """A plain ``{name: factory}`` copy."""
        return dict(self.items())
