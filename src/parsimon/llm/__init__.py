"""One OpenAI-compatible chat client for every agent, structured output, and a local model served on loopback."""

from __future__ import annotations

from parsimon.llm.client import ChatClient
from parsimon.llm.config import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_PORT, LLMConfig
from parsimon.llm.endpoint import Endpoint, ensure_endpoint, is_default_endpoint
from parsimon.llm.server import LocalServer, is_serving, model_path
from parsimon.llm.structured import MODES, OUTPUT_MODES, StructuredError, StructuredOutput, schema_to_gbnf
from parsimon.llm.types import ChatModel, ChatResponse, Usage

__all__ = [
    "ChatClient",
    "ChatModel",
    "ChatResponse",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_PORT",
    "Endpoint",
    "LLMConfig",
    "LocalServer",
    "MODES",
    "OUTPUT_MODES",
    "StructuredError",
    "StructuredOutput",
    "Usage",
    "ensure_endpoint",
    "is_default_endpoint",
    "is_serving",
    "model_path",
    "schema_to_gbnf",
]
