"""Routing: model names and aliases to upstream models, fallbacks with bounded retries, and the cascade.

A request names a model, an alias, or a cascade. A model is tried first on its own upstream (up to
``retries`` further attempts on HTTP 408/409/429/5xx and connection errors, with doubling back-off), then
on each of its ``fallbacks`` in order. A cascade (Calibrate-Then-Act applied to routing) asks its first,
cheapest model; when that reply's confidence is below the threshold, it asks the next model, and so on.
The confidence is the geometric mean of the reply's token probabilities,
``exp(mean(logprob))``, from the logprobs the gateway requests upstream; a reply without logprobs has no
confidence and is escalated (the cascade cannot tell whether to trust it).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from parsimon.gateway.config import GatewayConfig, ModelSpec, UpstreamSpec

__all__ = ["RETRY_STATUS", "Route", "Router", "UpstreamError", "Upstreams", "confidence"]

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_RETRY_EXC = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout,
              httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class UpstreamError(Exception):
    """Every attempt on every candidate model failed (``status`` of the last HTTP answer, if any)."""

    def __init__(self, message: str, *, status: int | None = None, attempts: list | None = None):
        super().__init__(message)
        self.status, self.attempts = status, attempts or []


@dataclass(frozen=True)
class Route:
    """What a requested model name resolves to."""

    name: str  # the canonical model or cascade name
    models: tuple[ModelSpec, ...]  # one model, or the cascade's models in order
    threshold: float | None = None  # the cascade's confidence threshold (None: not a cascade)

    @property
    def is_cascade(self) -> bool:
        return self.threshold is not None


@dataclass
class Attempt:
    model: str
    upstream: str
    status: int | None
    error: str | None
    seconds: float


@dataclass
class Stage:
    """One model asked within a cascade."""

    model: str
    confidence: float | None
    usage: dict
    cost: float
    accepted: bool


@dataclass
class Outcome:
    """A finished upstream call: the reply, the model that gave it, what it cost and how it went."""

    reply: dict
    model: ModelSpec
    usage: dict
    cost: float
    attempts: list[Attempt] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    raw: bytes | None = None  # the upstream's answer as it came (forwarded as is when nothing was changed)


def confidence(reply: dict) -> float | None:
    """``exp(mean token logprob)`` of the first choice, or None when the reply has no logprobs."""
    try:
        content = reply["choices"][0]["logprobs"]["content"]
        values = [float(t["logprob"]) for t in content if t.get("logprob") is not None]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not values:
        return None
    return math.exp(sum(values) / len(values))


def _usage(reply: dict) -> dict:
    u = reply.get("usage") or {}
    try:
        return {"prompt_tokens": int(u.get("prompt_tokens") or 0),
                "completion_tokens": int(u.get("completion_tokens") or 0)}
    except (TypeError, ValueError):
        return {"prompt_tokens": 0, "completion_tokens": 0}


class Router:
    """Resolves requested model names (see the module docstring)."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self._names: dict[str, Route] = {}
        for m in config.models.values():
            route = Route(m.name, (m,))
            for n in (m.name, *m.aliases):
                self._names[n] = route
        for c in config.cascades.values():
            route = Route(c.name, tuple(config.models[n] for n in c.models), c.threshold)
            for n in (c.name, *c.aliases):
                self._names[n] = route

    def names(self) -> list[str]:
        """Every name a request may use."""
        return sorted(self._names)

    def resolve(self, name: str) -> Route | None:
        """The route of ``name``, or None when it is unknown."""
        return self._names.get(name)

    def candidates(self, model: ModelSpec) -> list[ModelSpec]:
        """The model, then its fallbacks (each once)."""
        out = [model]
        for f in model.fallbacks:
            spec = self.config.models[f]
            if spec not in out:
                out.append(spec)
        return out

    def upper_cost(self, route: Route, tokens_in: int, tokens_out: int) -> float:
        """The most a call can cost: the priciest candidate of each model asked (all of a cascade's)."""
        return sum(max(c.cost(tokens_in, tokens_out) for c in self.candidates(m)) for m in route.models)


class Upstreams:
    """One pooled async HTTP/1.1 transport per upstream.

    Streaming calls and ``https://`` upstreams go straight to ``httpx.AsyncHTTPTransport`` (httpx's
    connection pool, without the ``AsyncClient`` layer: no cookie jar, redirects or URL merging per call).
    Non-streaming calls to ``http://`` upstreams use :class:`~parsimon.gateway.fasthttp.FastPool`, about
    twenty times cheaper in CPU (see that module), unless ``fast=False``.
    """

    def __init__(self, specs: dict[str, UpstreamSpec], *, sleep=asyncio.sleep, fast: bool = True):
        from parsimon.gateway.fasthttp import FastPool, available

        self.specs = specs
        self._transports: dict[str, httpx.AsyncHTTPTransport] = {}
        self._fast = {n: FastPool(s.base_url, timeout=s.timeout_s) for n, s in specs.items()
                      if fast and available() and s.base_url.startswith("http://")}
        self._urls = {n: httpx.URL(s.base_url + "/chat/completions") for n, s in specs.items()}
        self._headers = {n: [("content-type", "application/json"), ("accept", "application/json")]
                         + ([("authorization", f"Bearer {s.api_key}")] if s.api_key else []) for n, s in specs.items()}
        self._timeouts = {n: {"connect": s.timeout_s, "read": s.timeout_s, "write": s.timeout_s, "pool": s.timeout_s}
                          for n, s in specs.items()}
        self._sleep = sleep

    def transport(self, name: str) -> httpx.AsyncHTTPTransport:
        t = self._transports.get(name)
        if t is None:
            t = self._transports[name] = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        return t

    async def aclose(self) -> None:
        for t in self._transports.values():
            await t.aclose()
        self._transports.clear()
        for f in self._fast.values():
            await f.aclose()

    async def _send(self, upstream: str, payload: dict, *, stream: bool) -> httpx.Response:
        content = json.dumps(payload).encode("utf-8")
        fast = self._fast.get(upstream)
        if fast is not None and not stream:
            status, body = await fast.post("/chat/completions", content, self._headers[upstream])
            return httpx.Response(status, content=body)
        request = httpx.Request("POST", self._urls[upstream], headers=self._headers[upstream], content=content,
                                extensions={"timeout": self._timeouts[upstream]})
        response = await self.transport(upstream).handle_async_request(request)
        if not stream:
            await response.aread()
            await response.aclose()
        return response

    async def _post(self, model: ModelSpec, body: dict, attempts: list[Attempt], *, stream: bool):
        """POST to one model's upstream with its retries; return the 200 response (body unread when streaming)."""
        spec = self.specs[model.upstream]
        payload = {**body, "model": model.upstream_model}
        last: str = ""
        for attempt in range(spec.retries + 1):
            t0 = time.perf_counter()
            status, error = None, None
            try:
                response = await self._send(model.upstream, payload, stream=stream)
                status = response.status_code
                if status == 200:
                    attempts.append(Attempt(model.name, model.upstream, 200, None, time.perf_counter() - t0))
                    return response
                text = (await response.aread())[:300].decode("utf-8", "replace")
                await response.aclose()
                error = f"HTTP {status}: {text}"
                if status not in RETRY_STATUS:
                    attempts.append(Attempt(model.name, model.upstream, status, error, time.perf_counter() - t0))
                    raise UpstreamError(f"{model.name} ({spec.base_url}) refused the request: {error}",
                                        status=status, attempts=attempts)
            except _RETRY_EXC as exc:
                error = f"{type(exc).__name__}: {exc}"
            attempts.append(Attempt(model.name, model.upstream, status, error, time.perf_counter() - t0))
            last = error or ""
            if attempt < spec.retries:
                await self._sleep(spec.backoff_s * (2 ** attempt))
        raise UpstreamError(f"{model.name} ({spec.base_url}) failed after {spec.retries + 1} attempt(s): {last}",
                            status=attempts[-1].status if attempts else None, attempts=attempts)

    async def complete(self, router: Router, model: ModelSpec, body: dict) -> Outcome:
        """One non-streaming completion with retries and fallbacks."""
        attempts: list[Attempt] = []
        error: UpstreamError | None = None
        for candidate in router.candidates(model):
            try:
                response = await self._post(candidate, body, attempts, stream=False)
            except UpstreamError as exc:
                error = exc
                if exc.status is not None and exc.status not in RETRY_STATUS and exc.status < 500 \
                        and exc.status not in (401, 403, 404):
                    # The request itself is bad (400, 422): another model would refuse it too.
                    raise
                continue
            try:
                reply = json.loads(response.content)
            except ValueError:
                error = UpstreamError(f"{candidate.name} answered 200 with something that is not JSON",
                                      status=200, attempts=attempts)
                continue
            usage = _usage(reply)
            return Outcome(reply, candidate, usage, candidate.cost(usage["prompt_tokens"], usage["completion_tokens"]),
                           attempts, raw=response.content)
        assert error is not None
        error.attempts = attempts
        raise error

    async def open_stream(self, router: Router, model: ModelSpec, body: dict) -> tuple[httpx.Response, ModelSpec,
                                                                                      list[Attempt]]:
        """Open a streaming completion (retries and fallbacks before the first byte); the caller reads it."""
        attempts: list[Attempt] = []
        error: UpstreamError | None = None
        for candidate in router.candidates(model):
            try:
                return await self._post(candidate, body, attempts, stream=True), candidate, attempts
            except UpstreamError as exc:
                error = exc
                if exc.status is not None and exc.status < 500 and exc.status not in RETRY_STATUS \
                        and exc.status not in (401, 403, 404):
                    raise
        assert error is not None
        error.attempts = attempts
        raise error

    async def cascade(self, router: Router, route: Route, body: dict, *, want_logprobs: bool) -> Outcome:
        """Ask the cascade's models in order until one is confident enough (the last one always answers)."""
        stages: list[Stage] = []
        attempts: list[Attempt] = []
        total_cost, total = 0.0, {"prompt_tokens": 0, "completion_tokens": 0}
        outcome: Outcome | None = None
        for i, model in enumerate(route.models):
            last = i == len(route.models) - 1
            ask = dict(body)
            if not last:
                ask.update(logprobs=True, top_logprobs=max(1, int(body.get("top_logprobs") or 1)))
            outcome = await self.complete(router, model, ask)
            attempts += outcome.attempts
            conf = confidence(outcome.reply)
            accepted = last or (conf is not None and conf >= route.threshold)
            stages.append(Stage(outcome.model.name, conf, outcome.usage, outcome.cost, accepted))
            total_cost += outcome.cost
            for k in total:
                total[k] += outcome.usage[k]
            if accepted:
                break
        assert outcome is not None
        reply = dict(outcome.reply)
        if not want_logprobs and reply.get("choices"):
            reply["choices"] = [{k: v for k, v in c.items() if k != "logprobs"} for c in reply["choices"]]
        reply["usage"] = {**total, "total_tokens": total["prompt_tokens"] + total["completion_tokens"]}
        return Outcome(reply, outcome.model, total, total_cost, attempts, stages)


def model_list(config: GatewayConfig) -> list[dict[str, Any]]:
    """The ``/v1/models`` entries: every model and cascade, with aliases as their own entries."""
    created = 0
    out = []
    for m in config.models.values():
        for n in (m.name, *m.aliases):
            out.append({"id": n, "object": "model", "created": created, "owned_by": f"parsimon:{m.upstream}",
                        "parsimon": {"model": m.name, "price_in_per_1k": m.price_in_per_1k,
                                     "price_out_per_1k": m.price_out_per_1k, "fallbacks": list(m.fallbacks)}})
    for c in config.cascades.values():
        for n in (c.name, *c.aliases):
            out.append({"id": n, "object": "model", "created": created, "owned_by": "parsimon:cascade",
                        "parsimon": {"cascade": list(c.models), "threshold": c.threshold}})
    return out
