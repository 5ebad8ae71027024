"""The gateway's HTTP surface (Starlette on uvicorn).

OpenAI-compatible: ``GET /v1/models``, ``POST /v1/chat/completions`` (``stream: true`` answers with
server-sent events). Tools: ``GET /v1/tools``, ``POST /v1/tools/call`` (``{"name": "server.tool",
"arguments": {...}}``), and the same tools as an MCP server (streamable HTTP) at ``/mcp``. The dashboard is
``GET /dashboard`` with its JSON API under ``/dashboard/api``; the admin API (kill switches, checkpoints,
run end) is under ``/admin``. Both need the admin token when one is configured.

Request headers the gateway reads: ``Authorization: Bearer <key>``; ``X-Parsimon-Run``,
``X-Parsimon-Workflow``, ``X-Parsimon-Component`` (where the key does not fix them);
``X-Parsimon-Request-Id`` (an idempotency key: re-sending a request that waits for approval finds its
approval); ``X-Parsimon-Resume-Token`` (from a 409 ``approval_pending`` answer);
``X-Parsimon-Approval-Wait`` (seconds to hold the request open for a decision, at most the configured
``approval_wait_s``). Answers carry ``X-Parsimon-Charged: 1``, ``X-Parsimon-Cost`` and
``X-Parsimon-Audit-Seq`` (the proof-of-action record).
"""

from __future__ import annotations

import contextlib
import hmac
import json
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from parsimon.errors import ApprovalError, ParsimonError
from parsimon.gateway.calls import GatewayError
from parsimon.gateway.config import GatewayConfig, hash_token
from parsimon.gateway.routing import model_list
from parsimon.gateway.service import Gateway

__all__ = ["create_app"]


def _json(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8"), status_code=status,
                    media_type="application/json", headers=headers)


def _error(exc: GatewayError) -> Response:
    return _json(exc.body(), exc.status, exc.headers)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise GatewayError(400, "invalid_request_error", "the request body is not valid JSON") from None


def _mcp_routes(gw: Gateway) -> tuple[list, Any]:
    """The ``/mcp`` route: a low-level MCP server whose tools are the governed tools."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[types.Tool(name=t.name, description=t.description,
                                                       input_schema=t.input_schema or {"type": "object"})
                                            for t in gw.mcp.tools()])

    async def call_tool(ctx, params):
        headers = ctx.request.headers if ctx.request is not None else {}
        try:
            p = gw.principal(headers)
            result, _ = await gw.call_tool(p, params.name, params.arguments or {}, headers)
        except GatewayError as exc:
            return types.CallToolResult(content=[types.TextContent(type="text", text=f"{exc.type}: {exc.message}")],
                                        is_error=True)
        return types.CallToolResult.model_validate(result)

    server = Server("parsimon-gateway", on_list_tools=list_tools, on_call_tool=call_tool)
    sub = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                     host=gw.config.host)
    return list(sub.routes), server.session_manager


def create_app(config: GatewayConfig, gateway: Gateway | None = None) -> Starlette:
    """The ASGI application of a gateway (its :class:`Gateway` starts and stops with the app)."""
    gw = gateway or Gateway(config)

    def admin(request: Request) -> str:
        """Who acts through the admin API or the dashboard; 401 without the admin token when one is set."""
        if gw.config.admin_token_sha256 is not None:
            auth = request.headers.get("authorization") or ""
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else request.query_params.get("token", "")
            if not token or not hmac.compare_digest(hash_token(token), gw.config.admin_token_sha256):
                raise GatewayError(401, "invalid_admin_token", "the admin token is missing or wrong")
        return "admin"

    async def models(request: Request) -> Response:
        return _json({"object": "list", "data": model_list(gw.config)})

    async def chat(request: Request) -> Response:
        try:
            p = gw.principal(request.headers)
            body = await _body(request)
            result, headers = await gw.chat(p, body, request.headers, request.is_disconnected)
        except GatewayError as exc:
            return _error(exc)
        if isinstance(result, dict):
            return _json(result, headers=headers)
        if isinstance(result, bytes):  # the upstream's answer, forwarded as it came
            return Response(result, media_type="application/json", headers=headers)
        return StreamingResponse(result, media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})

    async def tools(request: Request) -> Response:
        try:
            gw.principal(request.headers)
        except GatewayError as exc:
            return _error(exc)
        return _json({"object": "list", "data": [t.__dict__ for t in gw.mcp.tools()], "unavailable": gw.mcp.errors})

    async def tool_call(request: Request) -> Response:
        try:
            p = gw.principal(request.headers)
            body = await _body(request)
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise GatewayError(400, "invalid_request_error", "the body must be {\"name\": ..., \"arguments\": {...}}")
            result, headers = await gw.call_tool(p, body["name"], body.get("arguments"), request.headers,
                                                 request.is_disconnected)
        except GatewayError as exc:
            return _error(exc)
        return _json(result, headers=headers)

    async def health(request: Request) -> Response:
        return _json({"ok": True, "live_calls": len(gw.live)})

    async def kill(request: Request) -> Response:
        try:
            who = admin(request)
            body = await _body(request)
            kind = body.get("kind", "global")
            if request.method == "DELETE":
                return _json({"released": gw.kills.release(kind, body.get("scope"))})
            k = gw.kills.engage(kind, body.get("scope"), reason=body.get("reason"), by=body.get("by") or who)
            cancelled = gw.cancel_killed([k])
            await gw.io(gw.audit.append, actor=body.get("by") or who, action="gateway.kill", target=kind,
                        args={"scope": k.scope, "reason": k.reason}, outcome=f"engaged; {cancelled} call(s) cancelled")
            return _json({"engaged": k.__dict__, "cancelled": cancelled})
        except GatewayError as exc:
            return _error(exc)
        except ValueError as exc:
            return _error(GatewayError(400, "invalid_request_error", str(exc)))

    async def checkpoint(request: Request) -> Response:
        try:
            admin(request)
            run = request.path_params.get("run")
            cp = await gw.checkpoint(f"run end: {run}" if run else "admin")
        except GatewayError as exc:
            return _error(exc)
        if cp is None:
            return _error(GatewayError(503, "no_checkpoint", gw.checkpoint_error or "checkpoints are disabled"))
        return _json(cp)

    async def dashboard(request: Request) -> Response:
        try:
            admin(request)
        except GatewayError as exc:
            return _error(exc)
        return HTMLResponse(files("parsimon.gateway").joinpath("dashboard.html").read_text(encoding="utf-8"))

    async def state(request: Request) -> Response:
        from parsimon.gateway.dashboard import dashboard_state

        try:
            admin(request)
        except GatewayError as exc:
            return _error(exc)
        return _json(await dashboard_state(gw))

    async def decide(request: Request) -> Response:
        try:
            admin(request)
            body = await _body(request)
            decision = body.get("decision")
            if decision not in ("approve", "reject"):
                raise GatewayError(400, "invalid_request_error", "`decision` must be 'approve' or 'reject'")
            by = body.get("by")
            if not isinstance(by, str) or not by.strip():
                raise GatewayError(400, "invalid_request_error", "`by` must name the person deciding")
            a = await gw.io(gw.approvals.decide, request.path_params["id"], approve=decision == "approve",
                            by=f"dashboard:{by.strip()}", args=body.get("args"), note=body.get("note"))
        except GatewayError as exc:
            return _error(exc)
        except (ApprovalError, ValueError) as exc:
            return _error(GatewayError(409 if isinstance(exc, ApprovalError) else 400, "approval_error", str(exc)))
        return _json(a.as_dict())

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/tools", tools, methods=["GET"]),
        Route("/v1/tools/call", tool_call, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/admin/kill", kill, methods=["POST", "DELETE"]),
        Route("/admin/checkpoint", checkpoint, methods=["POST"]),
        Route("/admin/runs/{run}/end", checkpoint, methods=["POST"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/api/state", state, methods=["GET"]),
        Route("/dashboard/api/approvals/{id}/decide", decide, methods=["POST"]),
    ]
    session_manager = None
    if config.mcp:
        mcp_routes, session_manager = _mcp_routes(gw)
        routes += mcp_routes

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await gw.start()
        try:
            if session_manager is not None:
                async with session_manager.run():
                    yield
            else:
                yield
        finally:
            await gw.stop()

    async def _parsimon_error(request: Request, exc: Exception) -> Response:
        return _error(GatewayError(500, "gateway_error", str(exc)))

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={ParsimonError: _parsimon_error})
    app.state.gateway = gw
    return app
