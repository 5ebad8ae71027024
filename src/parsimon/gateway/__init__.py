"""The governance gateway: one governed door for model and tool calls from any agent in any language."""

from __future__ import annotations

from parsimon.gateway.calls import GatewayError, Principal
from parsimon.gateway.config import GatewayConfig, default_config, hash_token, load_config
from parsimon.gateway.limits import KillSwitch, RateLimiter, TokenBucket
from parsimon.gateway.routing import Router, confidence
from parsimon.gateway.server import GatewayServer, serve

__all__ = [
    "GatewayConfig",
    "GatewayError",
    "GatewayServer",
    "KillSwitch",
    "Principal",
    "RateLimiter",
    "Router",
    "TokenBucket",
    "confidence",
    "default_config",
    "hash_token",
    "load_config",
    "serve",
]
