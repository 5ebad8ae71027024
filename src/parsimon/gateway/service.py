"""The governed door: every model call and tool call passes the same steps.

1. Authenticate the key; find the workflow, run and component the call is charged to.
2. Refuse at once if a kill switch covers the call (global, the key, the run), or a rate limit is spent.
3. Ask the policy (:mod:`parsimon.governance.policy`): deny; allow; or require approval, in which case a
   durable approval is written and the request is held open until a person decides (or answered 409 with
   a resume token after ``approval_wait_s``; the client re-sends with the token, also after a restart).
4. Reserve an upper bound of the cost against the hard budgets (:meth:`Ledger.reserve`); refuse with 402.
5. Call the upstream (routing, fallbacks, cascade) or the MCP tool.
6. In one step on the store thread: settle the reservation with the actual cost and append the
   proof-of-action record (argument and result digests), *before* the client sees the answer, so every
   answer a client saw is in the ledger and the log even if the gateway is killed right after.

Store writes run on the event loop's thread: a reservation and a settle-and-record are each one short
SQLite transaction (about 0.1 ms), cheaper than handing them to a worker thread and back, and the gateway is
normally the store's only busy writer. What could stall the loop is kept off it: WAL checkpoints (turned off
on the gateway's writing connections and run passively from a background thread every second), the
dashboard's queries and the log verification (their own connections, on a background thread), and signed
checkpoints (:class:`~parsimon.governance.receipts.Checkpointer`, its own connection and thread) every
``checkpoint_every`` records, every ``checkpoint_interval_s`` seconds while records arrive, at run end and at
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from parsimon.errors import ApprovalError, BudgetExceeded
from parsimon.gateway.calls import GatewayError, LiveCall, Principal
from parsimon.gateway.config import GatewayConfig, hash_token
from parsimon.gateway.limits import KillSwitch, RateLimiter
from parsimon.gateway.mcp_router import McpRouter
from parsimon.gateway.model_calls import ModelCalls
from parsimon.gateway.routing import Router, Upstreams
from parsimon.gateway.tool_calls import ToolCalls
from parsimon.governance.approvals import Approval, ApprovalStore, digest
from parsimon.governance.audit import get_audit_log
from parsimon.governance.ledger import get_ledger, settle_and_record
from parsimon.governance.store import checkpoint_wal, defer_wal_checkpoints, resolve_path

__all__ = ["Gateway"]

log = logging.getLogger("parsimon.gateway")
_HEADER_MAX = 200


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None or value == "":
        return None
    if len(value) > _HEADER_MAX:
        raise GatewayError(400, "invalid_request_error", f"header {name} is longer than {_HEADER_MAX} characters")
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Gateway(ModelCalls, ToolCalls):
    """The gateway's state and the governed calls (the HTTP layer is :mod:`parsimon.gateway.app`).

    Args:
        config: The validated configuration.
    """

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.path = resolve_path(config.store)
        self.ledger = get_ledger(self.path)
        self.audit = get_audit_log(self.path)
        self.approvals = ApprovalStore(self.path, audit=self.audit)
        self.kills = KillSwitch(self.path)
        rl = config.rate_limits
        self.limiter = RateLimiter(global_per_s=rl.global_per_s, global_burst=rl.global_burst,
                                   run_per_s=rl.run_per_s, run_burst=rl.run_burst)
        self.router = Router(config)
        self.upstreams = Upstreams(config.upstreams)
        self.mcp = McpRouter(config.mcp)
        self.live: dict[str, LiveCall] = {}
        self.counters: Counter[str] = Counter()
        self.started = time.time()
        self._keys = {k.token_sha256: k for k in config.keys.values()}
        self._token_cache: dict[str, Any] = {}  # token -> key, so a known token is not hashed per call
        self._bg = ThreadPoolExecutor(1, thread_name_prefix="parsimon-gateway-background")
        self._checkpointer = None
        self._since_checkpoint = 0
        self._signing = False
        self._tasks: list[asyncio.Task] = []
        self.last_checkpoint: dict | None = None
        self.checkpoint_error: str | None = None
        config.policy.apply_budgets(self.ledger)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Release reservations of dead gateways, connect MCP servers, start the background tasks."""
        await self.io(self._release_orphans)
        defer_wal_checkpoints(self.ledger._db, self.audit._db, self.approvals._db, self.kills._db)
        await self.mcp.start()
        if self.config.checkpoint_every or self.config.checkpoint_interval_s:
            await asyncio.get_running_loop().run_in_executor(self._bg, self._open_checkpointer)
        self._tasks = [asyncio.create_task(self._watch_kills()), asyncio.create_task(self._wal_checkpoints())]
        if self.config.checkpoint_interval_s:
            self._tasks.append(asyncio.create_task(self._checkpoint_timer()))

    async def stop(self) -> None:
        """Sign a final checkpoint, close MCP sessions and upstream connections."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(self._bg, self._sign, "shutdown")
        await self.mcp.stop()
        await self.upstreams.aclose()
        self._bg.shutdown(wait=True)
        checkpoint_wal(self.path)

    def _release_orphans(self) -> int:
        n = 0
        for r in self.ledger.reservations():
            pid = (r["meta"] or {}).get("gateway_pid")
            if isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
                n += self.ledger.release(r["id"])
        return n

    def _open_checkpointer(self) -> None:
        from parsimon.governance.receipts import Checkpointer, load_signing_key

        try:
            self._checkpointer = Checkpointer(self.path, load_signing_key(self.config.signing_key))
            if self._checkpointer.last is not None:
                self.last_checkpoint = self._checkpointer.last.as_dict()
        except Exception as exc:  # noqa: BLE001 - the gateway serves on; the dashboard shows why nothing is signed
            self.checkpoint_error = f"{type(exc).__name__}: {exc}"
            log.error("no signed checkpoints: %s", self.checkpoint_error)

    def _sign(self, reason: str) -> dict | None:
        if self._checkpointer is None:
            return None
        try:
            if self._checkpointer.pending() == 0 and self._checkpointer.last is not None and reason == "interval":
                return self.last_checkpoint
            cp = self._checkpointer.sign(reason)
            self.last_checkpoint, self.checkpoint_error = cp.as_dict(), None
            self.counters["checkpoints"] += 1
            return self.last_checkpoint
        except Exception as exc:  # noqa: BLE001 - a failed signature is shown, the gateway serves on
            self.checkpoint_error = f"{type(exc).__name__}: {exc}"
            log.error("checkpoint failed: %s", self.checkpoint_error)
            return None
        finally:
            self._signing = False

    def _maybe_checkpoint(self) -> None:
        every = self.config.checkpoint_every
        if every and self._since_checkpoint >= every and not self._signing and self._checkpointer is not None:
            self._since_checkpoint, self._signing = 0, True
            self._bg.submit(self._sign, "interval")

    async def checkpoint(self, reason: str) -> dict | None:
        """Sign a checkpoint now (e.g. ``"run end: <id>"``)."""
        self._since_checkpoint = 0
        return await asyncio.get_running_loop().run_in_executor(self._bg, self._sign, reason)

    async def _checkpoint_timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_interval_s)
            if self._since_checkpoint and not self._signing:
                self._since_checkpoint, self._signing = 0, True
                await asyncio.get_running_loop().run_in_executor(self._bg, self._sign, "interval")

    async def background(self, fn, *args, **kwargs):
        """Run ``fn`` on the background thread (work that must not hold up calls)."""
        return await asyncio.get_running_loop().run_in_executor(self._bg, partial(fn, *args, **kwargs))

    async def _wal_checkpoints(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await self.background(checkpoint_wal, self.path)

    async def _watch_kills(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self.live:
                with contextlib.suppress(Exception):
                    self.cancel_killed(await self.io(self.kills.active))

    def cancel_killed(self, kills) -> int:
        """Cancel the calls in flight that a kill switch covers; return how many."""
        n = 0
        for call in list(self.live.values()):
            p = call.principal
            hit = next((k for k in kills if k.kind == "global" or (k.kind == "key" and k.scope == p.key)
                        or (k.kind == "run" and k.scope == p.run)), None)
            if hit is not None and call.cancelled is None:
                call.cancelled = f"kill switch ({hit.kind}{'' if hit.kind == 'global' else ' ' + hit.scope})"
                if call.task is not None:
                    call.task.cancel()
                n += 1
        return n

    async def io(self, fn, *args, **kwargs):
        """A store call on the hot path (see the module docstring: it runs here, on the loop's thread)."""
        return fn(*args, **kwargs)

    # ------------------------------------------------------------------ callers
    def principal(self, headers: Mapping[str, str]) -> Principal:
        """The caller of a request, from its bearer token and X-Parsimon-* headers."""
        auth = headers.get("authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else (headers.get("x-api-key") or "").strip()
        key = None
        if token:
            key = self._token_cache.get(token)
            if key is None:
                key = self._keys.get(hash_token(token))
                if key is not None and len(self._token_cache) < 10_000:
                    self._token_cache[token] = key
        if key is None and not self.config.anonymous:
            raise GatewayError(401, "invalid_api_key", "missing or unknown API key (Authorization: Bearer <key>)")
        name = key.name if key else None
        workflow = (key.workflow if key and key.workflow else None) or _header(headers, "x-parsimon-workflow") \
            or (name or "gateway")
        run = (key.run if key and key.run else None) or _header(headers, "x-parsimon-run") \
            or f"gateway-{name or 'anonymous'}"
        return Principal(name, workflow, run, _header(headers, "x-parsimon-component") or "gateway",
                         _header(headers, "x-parsimon-request-id"), key.rate_per_s if key else None,
                         key.burst if key else None, key.models if key else None)

    def _record(self, p: Principal, action: str, target: str, *, args: dict | None = None,
                after: dict | None = None, outcome: str) -> Any:
        rec = self.audit.append(actor=p.actor, action=action, target=target, args=args, after=after,
                                outcome=outcome, run=p.run)
        self._since_checkpoint += 1
        return rec

    async def _refuse(self, p: Principal, action: str, target: str, args: dict | None, err: GatewayError):
        self.counters[f"refused:{err.type}"] += 1
        await self.io(self._record, p, action, target, args=args,
                      after={"error": err.type, **{k: v for k, v in err.extra.items() if k != "resume_token"}},
                      outcome=f"refused: {err.message}"[:500])
        self._maybe_checkpoint()
        raise err

    # ------------------------------------------------------------------ admission
    async def admit(self, p: Principal, on: str, name: str, args: dict, *, headers: Mapping[str, str],
                    risk: str | None = None, eval_args: dict | None = None, disconnected=None) -> Approval | None:
        """Kill switches, rate limits, policy and approvals; return the approval a person gave, if any."""
        action = f"{on}.call"
        kill = self.kills.blocking(key=p.key, run=p.run)
        if kill is not None:
            await self._refuse(p, action, name, {"args_digest": digest(args)}, GatewayError(
                403, "kill_switch", f"stopped by the {kill.kind} kill switch"
                + (f" ({kill.reason})" if kill.reason else ""), extra={"kill": kill.kind}))
        limited = self.limiter.check(key=p.key, key_rate=p.rate_per_s, key_burst=p.burst, run=p.run)
        if limited is not None:
            scope, wait = limited
            self.counters["rate_limited"] += 1
            raise GatewayError(429, "rate_limit_exceeded", f"{scope} rate limit reached; retry in {wait:.2f} s",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if on == "model" and p.models is not None and not any(fnmatch.fnmatchcase(name, g) for g in p.models):
            await self._refuse(p, action, name, {"args_digest": digest(args)}, GatewayError(
                403, "model_not_allowed", f"key {p.key!r} may not use model {name!r}"))
        verdict = self.config.policy.evaluate(on, name, eval_args if eval_args is not None else args, key=p.key,
                                              workflow=p.workflow, risk=risk)
        if verdict.effect == "deny":
            await self._refuse(p, action, name, {"args_digest": digest(args)}, GatewayError(
                403, "policy_denied", verdict.reason, extra={"rule": verdict.rule, "risk": verdict.risk}))
        if verdict.effect == "require_approval":
            return await self._approval(p, on, name, args, verdict, headers, disconnected)
        return None

    async def _approval(self, p, on, name, args, verdict, headers, disconnected=None) -> Approval:
        token = _header(headers, "x-parsimon-resume-token")
        wait = self.config.approval_wait_s
        raw_wait = _header(headers, "x-parsimon-approval-wait")
        if raw_wait is not None:
            try:
                wait = min(max(0.0, float(raw_wait)), wait)
            except ValueError:
                raise GatewayError(400, "invalid_request_error", "X-Parsimon-Approval-Wait must be seconds") from None
        a: Approval | None = None
        try:
            if token is not None:
                a = await self.io(self.approvals.by_token, token)
            elif p.request_id is not None:
                a = await self.io(self.approvals.find, p.key, p.request_id)
        except ApprovalError as exc:
            raise GatewayError(404, "approval_not_found", str(exc)) from None
        if a is not None and (a.kind != on or a.action != name or a.args_digest != digest(args) or a.key != p.key):
            raise GatewayError(409, "approval_mismatch", f"approval {a.id} was given for another {a.kind} call "
                               f"({a.action}); a resume token only resumes the request (and key) it was issued for")
        if a is None:
            self.counters["approvals_requested"] += 1
            a, token = await self.io(self.approvals.request, kind=on, action=name, args=args, run=p.run,
                                     workflow=p.workflow, key=p.key, risk=verdict.risk, rule=verdict.rule,
                                     reason=verdict.reason, expires_s=verdict.expires_s, request_id=p.request_id,
                                     requester=p.actor)
        deadline = time.monotonic() + wait
        while a.state == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            a = await self.io(self.approvals.get, a.id)
            if disconnected is not None and await disconnected():
                # The caller is gone (killed, timed out): leave the approval for the request it will re-send,
                # rather than run an approved action nobody waits for.
                raise GatewayError(499, "client_disconnected", f"the caller left while approval {a.id} was "
                                   f"{a.state}; re-send with the same request id or resume token")
        if a.state == "pending":
            raise GatewayError(409, "approval_pending", f"{on} {name!r} needs a person's approval "
                               f"({verdict.reason}); approval {a.id} is pending", extra={
                                   "approval_id": a.id, "resume_token": token, "rule": a.rule, "risk": a.risk,
                                   "expires": a.expires}, headers={"X-Parsimon-Approval": a.id})
        if a.state in ("rejected", "expired"):
            raise GatewayError(403, "approval_rejected", f"approval {a.id} was {a.state}"
                               + (f" by {a.decided_by}" if a.decided_by else ""),
                               extra={"approval_id": a.id, "state": a.state})
        try:
            return await self.io(self.approvals.consume, a.id)
        except ApprovalError as exc:
            raise GatewayError(409, "approval_used", str(exc), extra={"approval_id": a.id}) from None

    def _reserve(self, p: Principal, component: str, **amounts) -> int:
        try:
            return self.ledger.reserve(component=component, run=p.run, workflow=p.workflow,
                                       ttl_s=self.config.reservation_ttl_s, meta={"gateway_pid": os.getpid()},
                                       **amounts)
        except BudgetExceeded as exc:
            self._record(p, "budget.refuse", component, args=amounts, outcome=f"refused: {exc}"[:500])
            raise

    async def reserve(self, p: Principal, component: str, **amounts) -> int:
        try:
            return await self.io(self._reserve, p, component, **amounts)
        except BudgetExceeded as exc:
            self.counters["refused:budget_exceeded"] += 1
            raise GatewayError(402, "budget_exceeded", str(exc)) from None

    def _finish(self, p: Principal, rid: int, component: str, usage: dict, cost: float, wall: float,
                action: str, target: str, args: dict, after: dict, outcome: str, *, actions: int = 0) -> Any:
        """Settle the reservation and append the record in one commit (see :func:`settle_and_record`)."""
        _, rec = settle_and_record(
            self.ledger, self.audit, rid,
            settle={"component": component, "tokens_in": usage.get("prompt_tokens", 0),
                    "tokens_out": usage.get("completion_tokens", 0), "money": cost, "actions": actions,
                    "wall_s": wall, "run": p.run, "workflow": p.workflow,
                    "meta": {"target": target, **{k: after[k] for k in ("model", "upstream_model") if k in after}}},
            record={"actor": p.actor, "action": action, "target": target, "args": args, "after": after,
                    "outcome": outcome, "run": p.run})
        self._since_checkpoint += 1
        return rec
