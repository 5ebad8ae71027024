"""Model calls through the gateway: chat completions, plain, streamed (relayed chunk by chunk and counted as
they flow) or through a cascade; a mixin of :class:`~parsimon.gateway.service.Gateway`, which provides the
admission, reservation and recording steps (see :mod:`parsimon.gateway.service`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from parsimon.gateway.calls import (
    GatewayError,
    LiveCall,
    Principal,
    completion_limit,
    prompt_bytes_bound,
    prompt_estimate,
)
from parsimon.gateway.routing import UpstreamError
from parsimon.governance.approvals import digest

__all__ = ["ModelCalls"]


class ModelCalls:
    """``chat`` and its streaming helpers (mixed into the Gateway)."""

    def _prepare(self, body: Any):
        if not isinstance(body, dict):
            raise GatewayError(400, "invalid_request_error", "the request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise GatewayError(400, "invalid_request_error", "`messages` must be a non-empty list of objects")
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "invalid_request_error", "`model` must be a non-empty string")
        route = self.router.resolve(name)
        if route is None:
            raise GatewayError(404, "model_not_found", f"unknown model {name!r}; models: {self.router.names()}")
        limit = completion_limit(body, self.config.default_max_tokens)
        args = {"model": route.name, "messages": messages, "max_tokens": limit,
                "temperature": body.get("temperature"), "stream": bool(body.get("stream"))}
        text = "\n".join(m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
                         for m in messages)
        return route, limit, args, {**args, "content": text}

    async def chat(self, p: Principal, body: Any, headers: Mapping[str, str],
                   disconnected=None) -> tuple[Any, dict[str, str]]:
        """One chat completion: a reply dict, or for ``stream: true`` an async iterator of SSE bytes.

        ``disconnected`` is an async callable telling whether the caller went away (checked while the call
        waits for a person).
        """
        route, limit, args, eval_args = self._prepare(body)
        approval = await self.admit(p, "model", route.name, args, headers=headers, eval_args=eval_args,
                                    disconnected=disconnected)
        body = dict(body)
        if approval is not None and approval.edited_args:
            for k in ("messages", "max_tokens", "temperature"):
                if k in approval.edited_args:
                    body[k] = approval.edited_args[k]
            limit = completion_limit(body, self.config.default_max_tokens)
        if "max_completion_tokens" not in body:
            body["max_tokens"] = limit
        bound = prompt_bytes_bound(body)
        k = len(route.models)
        rid = await self.reserve(p, p.component, tokens_in=bound * k, tokens_out=limit * k,
                                 money=self.router.upper_cost(route, bound, limit))
        call = LiveCall("model", route.name, p, reserved_money=self.router.upper_cost(route, bound, limit),
                        reserved_tokens=(bound + limit) * k, stream=bool(body.get("stream")))
        reserved_usage = {"prompt_tokens": bound * k, "completion_tokens": limit * k}
        self.live[call.id] = call
        req_args = {"request_digest": digest(body), "model": body["model"], "max_tokens": limit,
                    "stream": call.stream, "messages": len(body["messages"]),
                    **({"approval": approval.id} if approval is not None else {})}
        if call.stream and not route.is_cascade:
            return await self._open_stream(p, route, body, rid, call, req_args, reserved_usage), {}
        t0 = time.perf_counter()
        try:
            call.task = asyncio.ensure_future(
                self.upstreams.cascade(self.router, route, {**body, "stream": False},
                                       want_logprobs=bool(body.get("logprobs")))
                if route.is_cascade else self.upstreams.complete(self.router, route.models[0], body))
            outcome = await call.task
        except (UpstreamError, asyncio.CancelledError) as exc:
            self.live.pop(call.id, None)
            await self._failed(p, rid, call, req_args, exc, time.perf_counter() - t0, reserved_usage)
        wall = time.perf_counter() - t0
        reply = outcome.reply
        # The digest is over the bytes the client receives: the upstream's own when they are forwarded as is.
        forward = outcome.raw if outcome.raw is not None and not outcome.stages else None
        after = {"response_digest": hashlib.sha256(forward).hexdigest() if forward is not None else digest(reply), "usage": outcome.usage, "cost": outcome.cost,
                 "model": outcome.model.name, "upstream_model": outcome.model.upstream_model,
                 "attempts": len(outcome.attempts), "latency_ms": round(wall * 1000, 3)}
        if outcome.stages:
            after["cascade"] = [{"model": s.model, "confidence": s.confidence, "cost": s.cost,
                                 "accepted": s.accepted} for s in outcome.stages]
        try:
            rec = await self.io(self._finish, p, rid, p.component, outcome.usage, outcome.cost, wall,
                                "model.call", route.name, req_args, after, "ok")
        finally:
            self.live.pop(call.id, None)
        self._maybe_checkpoint()
        self.counters["model_calls"] += 1
        out_headers = {"X-Parsimon-Charged": "1", "X-Parsimon-Cost": f"{outcome.cost:.10g}",
                       "X-Parsimon-Audit-Seq": str(rec.seq), "X-Parsimon-Model": outcome.model.name}
        if outcome.stages:
            out_headers["X-Parsimon-Cascade"] = ",".join(
                f"{s.model}:{'-' if s.confidence is None else f'{s.confidence:.3f}'}" for s in outcome.stages)
        if call.stream:
            return self._replay_stream(reply), out_headers
        return (forward if forward is not None else reply), out_headers

    async def _failed(self, p, rid, call: LiveCall, req_args, exc, wall, reserved_usage: dict) -> None:
        """Record a failed or cancelled call and raise the HTTP error for it."""
        if isinstance(exc, asyncio.CancelledError) and call.cancelled is None:
            call.cancelled = "client disconnected"
        if call.cancelled is not None:
            # The upstream may have generated tokens already; charge the reserved bound (fail safe).
            await self.io(self._finish, p, rid, p.component, reserved_usage, call.reserved_money, wall, "model.call",
                          call.name, req_args, {"usage": "unknown (cancelled); charged the reserved bound"},
                          f"cancelled: {call.cancelled}")
            raise GatewayError(403 if call.cancelled.startswith("kill") else 499, "cancelled",
                               f"the call was cancelled: {call.cancelled}")
        await self.io(self.ledger.release, rid)
        attempts = [a.__dict__ for a in getattr(exc, "attempts", [])]
        await self.io(self._record, p, "model.call", call.name, args=req_args,
                      after={"attempts": attempts[-5:]}, outcome=f"error: {exc}"[:500])
        self.counters["upstream_errors"] += 1
        raise GatewayError(502, "upstream_error", str(exc))

    async def _open_stream(self, p, route, body, rid, call: LiveCall, req_args, reserved_usage) -> AsyncIterator[bytes]:
        t0 = time.perf_counter()
        try:
            response, model, attempts = await self.upstreams.open_stream(self.router, route.models[0], body)
        except UpstreamError as exc:
            self.live.pop(call.id, None)
            await self._failed(p, rid, call, req_args, exc, time.perf_counter() - t0, reserved_usage)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return self._relay(p, rid, call, req_args, response, model, len(attempts), wants_usage, body, t0)

    async def _relay(self, p, rid, call, req_args, response, model, n_attempts, wants_usage, body, t0):
        usage: dict | None = None
        counted, done, error = 0, False, None
        text: list[str] = []
        settled = False

        def settle(outcome: str) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            u = usage or {"prompt_tokens": prompt_estimate(body), "completion_tokens": counted}
            cost = model.cost(u["prompt_tokens"], u["completion_tokens"])
            after = {"response_digest": digest({"content": "".join(text)}), "usage": u, "cost": cost,
                     "model": model.name, "upstream_model": model.upstream_model, "attempts": n_attempts,
                     "usage_source": "upstream" if usage else "counted chunks",
                     "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
            self._finish(p, rid, p.component, u, cost, time.perf_counter() - t0, "model.call", call.name,
                         req_args, after, outcome)

        try:
            async for line in response.aiter_lines():
                if call.cancelled is not None:
                    error = f"cancelled: {call.cancelled}"
                    break
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    continue
                if chunk.get("usage"):
                    u = chunk["usage"]
                    usage = {"prompt_tokens": int(u.get("prompt_tokens") or 0),
                             "completion_tokens": int(u.get("completion_tokens") or 0)}
                    if not chunk.get("choices") and not wants_usage:
                        continue
                for c in chunk.get("choices") or []:
                    piece = (c.get("delta") or {}).get("content")
                    if piece:
                        counted += 1
                        text.append(piece)
                call.tokens_out = counted
                yield f"data: {data}\n\n".encode()
            if done:
                await self.io(settle, "ok")
                self.counters["model_calls"] += 1
                self._maybe_checkpoint()
                yield b"data: [DONE]\n\n"
            else:
                error = error or "the upstream closed the stream before [DONE]"
                await self.io(settle, f"error: {error}")
                yield f"data: {json.dumps({'error': {'message': error, 'type': 'stream_error'}})}\n\n".encode()
        finally:
            self.live.pop(call.id, None)
            with contextlib.suppress(Exception):
                await response.aclose()
            if not settled:
                # The client went away mid-stream: what flowed was generated, so charge it.
                with contextlib.suppress(Exception):
                    settle("cancelled: client disconnected")

    async def _replay_stream(self, reply: dict) -> AsyncIterator[bytes]:
        """A finished (cascade) reply as SSE chunks."""
        base = {"id": reply.get("id", "chatcmpl-parsimon"), "object": "chat.completion.chunk",
                "created": reply.get("created", int(time.time())), "model": reply.get("model", "")}
        for i, c in enumerate(reply.get("choices") or []):
            msg = c.get("message") or {}
            yield f"data: {json.dumps({**base, 'choices': [{'index': i, 'delta': {'role': 'assistant', 'content': msg.get('content') or ''}, 'finish_reason': None}]})}\n\n".encode()
            yield f"data: {json.dumps({**base, 'choices': [{'index': i, 'delta': {}, 'finish_reason': c.get('finish_reason', 'stop')}]})}\n\n".encode()
        yield b"data: [DONE]\n\n"
