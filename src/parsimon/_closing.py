"""``Closing``: the one context-manager shape of objects that hold a resource and have ``close()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

__all__ = ["Closing"]


class Closing(ABC):
    """``with obj:`` returns ``obj`` and calls ``obj.close()`` on the way out, error or not."""

    @abstractmethod
    def close(self) -> None:
        """Release the resource (safe to call twice)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
