"""The MCP side of the gateway: client sessions to the configured MCP servers (stdio or streamable HTTP),
one tool namespace over all of them (``<server>.<tool>``), and the calls.

Policy checks, approvals, the ledger and the proof-of-action log are applied by the gateway around
:meth:`McpRouter.call`; this module only connects and forwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from parsimon.errors import DependencyNotInstalled
from parsimon.gateway.config import McpServerSpec

__all__ = ["McpRouter", "Tool", "ToolError"]

log = logging.getLogger("parsimon.gateway")


class ToolError(Exception):
    """A tool is unknown, its server is unavailable, or the call failed."""

    def __init__(self, message: str, *, status: int = 502):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Tool:
    """One routed tool."""

    name: str  # "<server>.<tool>"
    server: str
    tool: str
    description: str
    input_schema: dict
    risk: str


def _mcp():
    try:
        import mcp  # noqa: F401
    except ImportError as exc:  # pragma: no cover - mcp ships with the gateway extra
        raise DependencyNotInstalled("mcp", "gateway", "MCP tool routing") from exc
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    return Client, StdioServerParameters


class McpRouter:
    """Connect to the MCP servers at :meth:`start`; route calls by ``server.tool`` name."""

    def __init__(self, specs: dict[str, McpServerSpec]):
        self.specs = specs
        self._stack: contextlib.AsyncExitStack | None = None
        self._clients: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._tools: dict[str, Tool] = {}

    async def start(self) -> None:
        """Open a session to every server; a server that cannot be reached is recorded in ``errors``."""
        if not self.specs:
            return
        Client, StdioServerParameters = _mcp()
        self._stack = contextlib.AsyncExitStack()
        for name, spec in self.specs.items():
            if spec.command is not None:
                target = StdioServerParameters(command=spec.command[0], args=list(spec.command[1:]),
                                               env={**os.environ, **spec.env} if spec.env else None, cwd=spec.cwd)
            else:
                target = spec.url
            try:
                client = await self._stack.enter_async_context(
                    Client(target, read_timeout_seconds=spec.timeout_s, cache=None))
                self._clients[name] = client
                await self._refresh(name)
            except Exception as exc:  # noqa: BLE001 - one bad server must not stop the gateway
                self.errors[name] = f"{type(exc).__name__}: {exc}"
                log.warning("MCP server %s unavailable: %s", name, exc)

    async def _refresh(self, server: str) -> None:
        spec = self.specs[server]
        listing = await self._clients[server].list_tools()
        for t in listing.tools:
            full = f"{server}.{t.name}"
            self._tools[full] = Tool(full, server, t.name, t.description or "", dict(t.input_schema or {}),
                                     spec.risk.get(t.name, spec.default_risk))

    async def stop(self) -> None:
        """Close every session (stdio servers are stopped)."""
        if self._stack is not None:
            with contextlib.suppress(Exception):
                await self._stack.aclose()
        self._stack, self._clients = None, {}

    def tools(self) -> list[Tool]:
        """Every routed tool, sorted by name."""
        return [self._tools[k] for k in sorted(self._tools)]

    def resolve(self, name: str) -> Tool:
        """The tool ``server.tool`` (or a bare tool name that only one server has)."""
        if name in self._tools:
            return self._tools[name]
        matches = [t for t in self._tools.values() if t.tool == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ToolError(f"tool {name!r} is ambiguous; name it as one of {[t.name for t in matches]}", status=400)
        down = "; unavailable servers: " + ", ".join(f"{k} ({v})" for k, v in self.errors.items()) if self.errors else ""
        raise ToolError(f"unknown tool {name!r}; tools: {sorted(self._tools)}{down}", status=404)

    async def call(self, tool: Tool, arguments: dict) -> dict:
        """Call a tool; return the MCP ``CallToolResult`` as JSON (``isError`` set by the server)."""
        client = self._clients.get(tool.server)
        if client is None:
            raise ToolError(f"MCP server {tool.server!r} is not connected: {self.errors.get(tool.server, '')}")
        try:
            result = await client.call_tool(tool.tool, arguments)
        except Exception as exc:  # noqa: BLE001 - transport and protocol errors of any server
            raise ToolError(f"{tool.name} failed: {type(exc).__name__}: {exc}") from exc
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)
