"""One OpenAI-compatible chat client for every agent, and a local model served on loopback."""

from __future__ import annotations

from parsimon.llm.client import ChatClient
from parsimon.llm.config import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_PORT, LLMConfig
from parsimon.llm.server import LocalServer, is_serving, model_path
from parsimon.llm.types import ChatModel, ChatResponse, Usage

__all__ = [
    "ChatClient",
    "ChatModel",
    "ChatResponse",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_PORT",
    "LLMConfig",
    "LocalServer",
    "Usage",
    "is_serving",
    "model_path",
]
