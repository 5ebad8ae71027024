"""MCP tool calls through the gateway; a mixin of :class:`~parsimon.gateway.service.Gateway`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from parsimon.gateway.calls import GatewayError, LiveCall, Principal
from parsimon.gateway.mcp_router import ToolError
from parsimon.governance.approvals import digest

__all__ = ["ToolCalls"]


class ToolCalls:
    """``call_tool`` (mixed into the Gateway)."""

    async def call_tool(self, p: Principal, name: str, arguments: Any, headers: Mapping[str, str],
                        disconnected=None) -> tuple[dict, dict]:
        """One MCP tool call through policy, approvals, the ledger and the log."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise GatewayError(400, "invalid_request_error", "`arguments` must be a JSON object")
        try:
            tool = self.mcp.resolve(name)
        except ToolError as exc:
            raise GatewayError(exc.status, "tool_not_found", str(exc)) from None
        approval = await self.admit(p, "tool", tool.name, arguments, headers=headers, risk=tool.risk,
                                    disconnected=disconnected)
        args = approval.effective_args if approval is not None and approval.effective_args is not None else arguments
        component = f"gateway.mcp.{tool.server}"
        rid = await self.reserve(p, component, actions=1)
        call = LiveCall("tool", tool.name, p)
        self.live[call.id] = call
        req_args = {"args_digest": digest(args), "server": tool.server, "tool": tool.tool, "risk": tool.risk,
                    **({"approval": approval.id, "edited": approval.edited_args is not None} if approval else {})}
        t0 = time.perf_counter()
        try:
            call.task = asyncio.ensure_future(asyncio.wait_for(self.mcp.call(tool, args),
                                                               self.config.mcp[tool.server].timeout_s))
            result = await call.task
            outcome = "error: the tool reported an error" if result.get("isError") else "ok"
        except (ToolError, TimeoutError, asyncio.CancelledError) as exc:
            result, outcome = None, (f"cancelled: {call.cancelled}" if call.cancelled
                                     else f"error: {type(exc).__name__}: {exc}"[:500])
        finally:
            self.live.pop(call.id, None)
        wall = time.perf_counter() - t0
        after = {"result_digest": digest(result) if result is not None else None,
                 "is_error": None if result is None else bool(result.get("isError"))}
        rec = await self.io(self._finish, p, rid, component, {}, 0.0, wall, "tool.call", tool.name, req_args,
                            after, outcome, actions=1)
        self._maybe_checkpoint()
        self.counters["tool_calls"] += 1
        if result is None:
            raise GatewayError(403 if call.cancelled else 502, "tool_error", outcome,
                               extra={"audit_seq": rec.seq})
        return result, {"X-Parsimon-Audit-Seq": str(rec.seq), "X-Parsimon-Charged": "1"}
