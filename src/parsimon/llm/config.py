"""Endpoint settings: arguments first, then environment variables, then the local-server defaults."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from parsimon.errors import ConfigError

__all__ = ["LLMConfig", "DEFAULT_BASE_URL", "DEFAULT_MODEL", "DEFAULT_PORT", "check_base_url"]

DEFAULT_PORT = 8765  # `parsimon llm serve` listens here unless told otherwise
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}/v1"
DEFAULT_MODEL = "smollm2-135m-instruct"  # the alias the local server registers its GGUF under


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise ConfigError(f"environment variable {name} must be a finite number, got {raw!r}")
    return value


def check_base_url(url: str, source: str = "`base_url` (--base-url)") -> str:
    """``url`` without a trailing slash, or a :class:`ConfigError` naming ``source`` when it is not an
    http(s) URL with a host."""
    if not isinstance(url, str):
        raise ConfigError(f"{source} must be a URL string, got {type(url).__name__}")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{source} must be an http:// or https:// URL with a host, such as "
                          f"{DEFAULT_BASE_URL}; got {url!r}")
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class LLMConfig:
    """Resolved settings of one chat endpoint.

    Attributes:
        base_url: OpenAI-compatible base URL ending in ``/v1`` (``PARSIMON_LLM_BASE_URL``).
        model: model name sent with every request (``PARSIMON_LLM_MODEL``).
        api_key: bearer token or None (``PARSIMON_LLM_API_KEY``, then ``OPENAI_API_KEY``).
        price_in_per_1k: money per 1,000 prompt tokens (``PARSIMON_LLM_PRICE_IN``; default 0).
        price_out_per_1k: money per 1,000 completion tokens (``PARSIMON_LLM_PRICE_OUT``; default 0).
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = None
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        price_in_per_1k: float | None = None,
        price_out_per_1k: float | None = None,
    ) -> LLMConfig:
        """Fill each unset argument from the environment, then from the defaults."""
        if base_url:
            base = check_base_url(base_url)
        elif os.environ.get("PARSIMON_LLM_BASE_URL"):
            base = check_base_url(os.environ["PARSIMON_LLM_BASE_URL"], "environment variable PARSIMON_LLM_BASE_URL")
        else:
            base = DEFAULT_BASE_URL
        key = api_key or os.environ.get("PARSIMON_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None
        pin = price_in_per_1k if price_in_per_1k is not None else _env_float("PARSIMON_LLM_PRICE_IN")
        pout = price_out_per_1k if price_out_per_1k is not None else _env_float("PARSIMON_LLM_PRICE_OUT")
        for name, value in (("price_in_per_1k", pin), ("price_out_per_1k", pout)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"`{name}` must be a finite number >= 0, got {value}")
        return cls(
            base_url=base,
            model=model or os.environ.get("PARSIMON_LLM_MODEL") or DEFAULT_MODEL,
            api_key=key,
            price_in_per_1k=pin or 0.0,
            price_out_per_1k=pout or 0.0,
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Money for one call at the configured prices."""
        return prompt_tokens / 1000.0 * self.price_in_per_1k + completion_tokens / 1000.0 * self.price_out_per_1k
