"""An OpenAI-compatible chat-completions client with retries, time limits, structured output and cost
accounting.

Every call is checked against the governance ledger's budgets before it is sent (with an estimate of
the prompt's tokens) and charged to the ledger afterwards with the token counts the endpoint reported
(an implausible count, negative or beyond :data:`MAX_TOKENS_PER_CALL`, is replaced by an estimate from
the text and flagged, so the call's cost is never lost). Each HTTP attempt ends within ``timeout``
seconds of wall-clock time, whatever the server does (a server that trickles bytes included), and a call
with ``deadline`` ends within that many seconds, retries and back-off included.

With ``structured=`` (a :class:`~parsimon.llm.structured.StructuredOutput`) the reply's shape is
constrained where the endpoint supports it (see :mod:`parsimon.llm.structured`) and parsed either way.

Behind the governance gateway (``parsimon gateway serve``; point ``base_url`` at it), each request carries
the current run, workflow and component (``X-Parsimon-Run``/``-Workflow``/``-Component``) so the gateway
charges them; a reply marked ``X-Parsimon-Charged: 1`` is not charged a second time here. A call the
gateway holds for a person's approval raises :class:`~parsimon.errors.ApprovalPending` (keep its
``resume_token`` and pass it back as ``chat(..., resume_token=...)``); a rejected one raises
:class:`~parsimon.errors.ApprovalRejected`.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from parsimon._closing import Closing
from parsimon.errors import ApprovalPending, ApprovalRejected, ConfigError, LLMError, MalformedReply
from parsimon.llm.config import LLMConfig
from parsimon.llm.structured import (
    MODE_OF_FORM,
    StructuredError,
    StructuredOutput,
    endpoint_support,
    refuses_form,
)
from parsimon.llm.transport import deadline_scope, deadline_transport
from parsimon.llm.types import ChatResponse, Usage

__all__ = ["ChatClient", "MAX_TOKENS_PER_CALL", "RETRY_STATUS"]

# 408 request timeout, 409 conflict (some gateways), 429 rate limit, and server errors are transient.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_RETRY_EXC = (httpx.ConnectError, httpx.ReadTimeout, httpx.WriteTimeout, httpx.ConnectTimeout,
              httpx.PoolTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
# No model reads or writes more tokens in one call than this; a larger reported count is not a count.
MAX_TOKENS_PER_CALL = 10**8


def _estimate_tokens(messages: list[dict[str, Any]]) -> int:
    # About four characters a token for English text; used for the budget pre-check and for implausible usage.
    return sum(len(str(m.get("content", ""))) for m in messages) // 4 + 4 * len(messages)


def _count(value: Any) -> int | None:
    """A reported token count as an int, or None when it is not a plausible count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKENS_PER_CALL else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _count(int(value))
    return None


def _usage(raw: Any, messages: list[dict[str, Any]], text: str) -> tuple[Usage, dict | None]:
    """The call's usage; with an estimate from the text (and the reported values, for the ledger) when the
    endpoint reported no plausible counts."""
    if not isinstance(raw, dict):
        raw = {} if raw is None else {"usage": raw}
    prompt, completion = _count(raw.get("prompt_tokens", 0) or 0), _count(raw.get("completion_tokens", 0) or 0)
    if prompt is not None and completion is not None:
        return Usage(prompt, completion), None
    reported = {k: str(v)[:40] for k, v in raw.items()}
    est = Usage(_estimate_tokens(messages) if prompt is None else prompt,
                max(1, len(text) // 4) if completion is None else completion)
    return est, reported


def _parse_reply(body: bytes) -> tuple[str, str, Any, str, dict]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedReply(f"the endpoint's reply is not JSON: {body[:200]!r}") from exc
    if not isinstance(data, dict):
        raise MalformedReply(f"the endpoint's reply is not a JSON object: {str(data)[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply(f"the endpoint's reply has no `choices`: {str(data)[:200]}")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedReply(f"the endpoint's reply has no `choices[0].message`: {str(data)[:200]}")
    content = message.get("content")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise MalformedReply(f"`choices[0].message.content` is not a string: {content!r:.200}")
    return content, str(choices[0].get("finish_reason") or "stop"), data.get("usage"), str(data.get("model") or ""), data


def _raise_approval(response: httpx.Response) -> None:
    """Turn the gateway's approval answers (409 approval_pending, 403 approval_rejected) into exceptions."""
    if response.status_code not in (403, 409):
        return
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return
    if not isinstance(error, dict):
        return
    if error.get("type") == "approval_pending":
        raise ApprovalPending(str(error.get("message")), approval_id=error.get("approval_id"),
                              resume_token=error.get("resume_token"), expires=error.get("expires"))
    if error.get("type") == "approval_rejected":
        raise ApprovalRejected(str(error.get("message")), approval_id=error.get("approval_id"),
                               state=error.get("state"))


class _FormRefused(Exception):
    """The endpoint refused a request form (internal; the caller moves to the next form)."""


@dataclass
class _Call:
    """The limits and running totals of one ``chat()`` call (all its completions)."""

    timeout: float
    max_retries: int
    deadline: float | None
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    latency: float = 0.0
    attempts: int = 0
    requests: int = 0
    estimated: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (gateway scope, approvals)

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - (time.monotonic() - self.started)

    def add(self, r: ChatResponse) -> None:
        self.usage = Usage(self.usage.prompt_tokens + r.usage.prompt_tokens,
                           self.usage.completion_tokens + r.usage.completion_tokens)
        self.cost += r.cost
        self.latency += r.latency_s
        self.requests += 1
        self.estimated = self.estimated or r.usage_estimated

    def response(self, last: ChatResponse, **kw: Any) -> ChatResponse:
        return replace(last, usage=self.usage, cost=self.cost, latency_s=self.latency, attempts=self.attempts,
                       requests=self.requests, usage_estimated=self.estimated, **kw)


class ChatClient(Closing):
    """Chat completions from any OpenAI-compatible endpoint (the local SmolLM2 server by default).

    Args:
        base_url: endpoint base URL ending in ``/v1``; default ``$PARSIMON_LLM_BASE_URL`` or the local
            server ``http://127.0.0.1:8765/v1``.
        model: model name; default ``$PARSIMON_LLM_MODEL`` or ``smollm2-135m-instruct``.
        api_key: bearer token; default ``$PARSIMON_LLM_API_KEY`` or ``$OPENAI_API_KEY``.
        timeout: wall-clock seconds for one HTTP attempt, from connecting to the reply's last byte.
        max_retries: further attempts after the first on 408/409/429/5xx and connection errors.
        deadline: wall-clock seconds for a whole call, retries, back-off and re-asks included (None: only
            ``timeout`` per attempt bounds it).
        backoff: first retry delay in seconds; doubles each retry, with ±25 % jitter, capped at
            ``max_backoff``; a ``Retry-After`` header (seconds, finite, >= 0) is honoured up to the same cap.
        price_in_per_1k / price_out_per_1k: money per 1,000 prompt / completion tokens for the ledger.
        component: the ledger component name for this client's calls.
        ledger: charge every call to the governance ledger (budgets are enforced only when True).

    Example::

        client = ChatClient()               # the local model, once `parsimon llm serve` runs
        reply = client.chat([{"role": "user", "content": "Say hi"}], max_tokens=16)
        print(reply.text, reply.usage.total_tokens)
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        deadline: float | None = None,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        price_in_per_1k: float | None = None,
        price_out_per_1k: float | None = None,
        component: str = "llm",
        ledger: bool = True,
    ):
        _check_limits(timeout, max_retries, deadline)
        if not (backoff >= 0 and max_backoff >= 0):
            raise ConfigError("`backoff` and `max_backoff` must be >= 0")
        self.config = LLMConfig.resolve(base_url, model, api_key, price_in_per_1k, price_out_per_1k)
        self.timeout, self.max_retries, self.deadline = float(timeout), max_retries, deadline
        self.backoff, self.max_backoff = backoff, max_backoff
        self.component, self.use_ledger = component, ledger
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers, transport=deadline_transport())
        self._sleep = time.sleep  # replaced in tests to keep them fast

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def model(self) -> str:
        return self.config.model

    def close(self) -> None:
        self._http.close()


    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after:
                try:
                    seconds = float(retry_after)
                except ValueError:  # an HTTP date or garbage: use our own back-off
                    seconds = float("nan")
                if math.isfinite(seconds) and seconds >= 0:
                    return min(seconds, self.max_backoff)
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base * random.uniform(0.75, 1.25)

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
        stop: list[str] | str | None = None,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
        structured: StructuredOutput | None = None,
        constrain: bool = True,
        timeout: float | None = None,
        max_retries: int | None = None,
        deadline: float | None = None,
        resume_token: str | None = None,
        request_id: str | None = None,
        **extra: Any,
    ) -> ChatResponse:
        """Send one chat completion request and return the first choice.

        Args:
            messages: OpenAI-style messages, each a dict with ``role`` and ``content``.
            temperature: sampling temperature (0 = greedy).
            max_tokens: upper bound on completion tokens.
            stop: stop sequence(s).
            response_format: sent as is (prefer ``structured``, which picks the form the endpoint takes).
            seed: sampling seed where the endpoint supports it.
            structured: the reply's shape. It is sent in the first request form the endpoint has not refused
                (mode ``constrained-schema`` / ``constrained-grammar``), or not at all when it refused every
                form (mode ``fallback``); the reply is parsed and validated into ``reply.parsed``, and one that
                does not validate is asked for once more with the error (``reply.reasks``), unless a
                constrained reply was cut at ``max_tokens``. ``reply.parse_error`` says why ``parsed`` is None.
            constrain: with ``structured``, False sends no constraint (mode ``fallback``), for comparison.
            timeout / max_retries / deadline: this call's limits (default: the client's).
            resume_token: behind the gateway: resume a call that waited for approval (from
                :class:`~parsimon.errors.ApprovalPending`), also from a restarted process.
            request_id: behind the gateway: an idempotency key; re-sending a call that waits for approval
                with the same id finds its approval.
            **extra: further fields passed through in the request body.

        Raises:
            ValueError: ``messages`` is empty or malformed, or a limit is out of range.
            BudgetExceeded: a hard budget would be crossed (nothing was sent).
            MalformedReply: the endpoint answered 200 with something that is not a chat completion.
            LLMError: the endpoint refused the request, failed after all retries, or the deadline passed.
            ApprovalPending: the gateway holds the call for a person's decision.
            ApprovalRejected: a person rejected the call, or its approval expired.
        """
        if not isinstance(messages, list) or not messages:
            raise ValueError("`messages` must be a non-empty list of {'role': ..., 'content': ...} dicts")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise ValueError(f"`messages[{i}]` must be a dict with 'role' and 'content', got {m!r:.100}")
        if max_tokens <= 0:
            raise ValueError(f"`max_tokens` must be > 0, got {max_tokens}")
        if structured is not None and not isinstance(structured, StructuredOutput):
            raise ConfigError(f"`structured` must be a StructuredOutput, got {type(structured).__name__}")
        call = _Call(self.timeout if timeout is None else timeout,
                     self.max_retries if max_retries is None else max_retries,
                     self.deadline if deadline is None else deadline)
        call.headers = self._scope_headers()
        if resume_token is not None:
            call.headers["X-Parsimon-Resume-Token"] = resume_token
        if request_id is not None:
            call.headers["X-Parsimon-Request-Id"] = request_id
        _check_limits(call.timeout, call.max_retries, call.deadline)
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if stop is not None:
            body["stop"] = stop
        if response_format is not None:
            body["response_format"] = response_format
        if seed is not None:
            body["seed"] = seed
        body.update(extra)
        if structured is None:
            reply = self._complete(body, call)
            call.add(reply)
            return call.response(reply)
        return self._structured(body, structured, constrain, call)

    def _structured(self, body: dict[str, Any], out: StructuredOutput, constrain: bool, call: _Call) -> ChatResponse:
        support = endpoint_support(self.config.base_url, self.config.model)
        messages = body["messages"]
        error = ""
        for ask in range(2):
            forms = support.usable() if constrain else []
            reply, form = None, None
            for form in forms:
                try:
                    reply = self._complete({**body, "messages": messages, **out.request_fields(form)}, call,
                                           refuses=form, meta={"structured": MODE_OF_FORM[form], "form": form})
                    break
                except _FormRefused as exc:
                    support.refused(form, str(exc))
            if reply is None:
                form = None
                reply = self._complete({**body, "messages": messages}, call, meta={"structured": "fallback"})
            call.add(reply)
            mode = MODE_OF_FORM[form] if form else "fallback"
            try:
                parsed = out.parse(reply.text)
            except StructuredError as exc:
                error = str(exc)
                cut = reply.finish_reason == "length"
                if form is not None and not cut:
                    support.broken(form)
                if cut:
                    error += f" (the reply was cut at max_tokens={body['max_tokens']})"
                left = call.left()
                if ask == 1 or (cut and form is not None) or (left is not None and left <= 0):
                    return call.response(reply, mode=mode, parse_error=error, reasks=ask)
                messages = [*messages, {"role": "assistant", "content": reply.text},
                            {"role": "user", "content": out.reask(error)}]
                continue
            if form is not None:
                support.kept(form)
            return call.response(reply, mode=mode, parsed=parsed, reasks=ask)
        raise AssertionError("unreachable")  # pragma: no cover

    def _complete(self, body: dict[str, Any], call: _Call, *, refuses: str | None = None,
                  meta: dict | None = None) -> ChatResponse:
        """One completion (with retries), charged to the ledger. With ``refuses``, an error reply that says
        the endpoint does not take that request form raises :class:`_FormRefused` at once."""
        messages = body["messages"]
        ledger = self._ledger()
        if ledger is not None:
            est = _estimate_tokens(messages)
            ledger.precheck(component=self.component, tokens_in=est, tokens_out=0, money=self.config.cost(est, 0))
        url = f"{self.config.base_url}/chat/completions"
        last_error = ""
        t_start = time.perf_counter()
        for attempt in range(call.max_retries + 1):
            left = call.left()
            if left is not None and left <= 0:
                raise LLMError(f"{url}: the call's deadline of {call.deadline:g} s passed"
                               + (f"; last error: {last_error}" if last_error else ""))
            limit = call.timeout if left is None else min(call.timeout, left)
            call.attempts += 1
            response: httpx.Response | None = None
            t0 = time.perf_counter()
            try:
                with deadline_scope(limit):
                    response = self._http.post(url, json=body, headers=call.headers, timeout=httpx.Timeout(limit))
            except _RETRY_EXC as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                raise LLMError(f"request to {url} failed: {type(exc).__name__}: {exc}") from exc
            if response is not None:
                if response.status_code == 200:
                    text, finish, raw_usage, model, raw = _parse_reply(response.content)
                    usage, reported = _usage(raw_usage, messages, text)
                    latency = time.perf_counter() - t0
                    cost = self.config.cost(usage.prompt_tokens, usage.completion_tokens)
                    charged = response.headers.get("x-parsimon-charged") == "1"
                    if charged:  # the gateway charged it (at its prices) to this run
                        try:
                            cost = float(response.headers.get("x-parsimon-cost", cost))
                        except ValueError:
                            pass
                    if ledger is not None and not charged:
                        info = {"model": model or self.config.model, "attempts": attempt + 1,
                                "base_url": self.config.base_url, **(meta or {})}
                        if reported is not None:
                            info["usage_reported"] = reported
                            info["usage_estimated"] = True
                        ledger.charge(component=self.component, tokens_in=usage.prompt_tokens,
                                      tokens_out=usage.completion_tokens, money=cost,
                                      wall_s=time.perf_counter() - t_start, meta=info)
                    return ChatResponse(text, finish, usage, cost, latency, model or self.config.model, attempt + 1,
                                        raw, usage_estimated=reported is not None)
                excerpt = response.text[:300]
                _raise_approval(response)
                if refuses is not None and refuses_form(refuses, response.status_code, response.text):
                    raise _FormRefused(f"HTTP {response.status_code}: {excerpt}")
                if response.status_code not in RETRY_STATUS:
                    raise LLMError(f"{url} answered HTTP {response.status_code}: {excerpt}")
                last_error = f"HTTP {response.status_code}: {excerpt}"
            if attempt < call.max_retries:
                delay = self._delay(attempt, response)
                left = call.left()
                if left is not None and delay >= left:
                    raise LLMError(f"{url}: the call's deadline of {call.deadline:g} s leaves no time to retry; "
                                   f"last error: {last_error}")
                self._sleep(delay)
        raise LLMError(f"{url} failed after {call.max_retries + 1} attempt(s); last error: {last_error}")

    def complete(self, prompt: str, *, system: str | None = None, **kwargs: Any) -> str:
        """Convenience: one user message (and an optional system message) in, the reply text out."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return self.chat(messages, **kwargs).text

    def _scope_headers(self) -> dict[str, str]:
        from parsimon.governance.scope import current_scope

        scope = current_scope()
        headers = {"X-Parsimon-Component": self.component}
        if scope.run is not None:
            headers["X-Parsimon-Run"] = scope.run
        if scope.workflow is not None:
            headers["X-Parsimon-Workflow"] = scope.workflow
        return headers

    def _ledger(self):
        if not self.use_ledger:
            return None
        from parsimon.governance import get_ledger

        return get_ledger()

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.base_url!r}, model={self.config.model!r})"


def _check_limits(timeout: float, max_retries: int, deadline: float | None) -> None:
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"`timeout` must be a finite number of seconds > 0, got {timeout}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"`max_retries` must be an int >= 0, got {max_retries}")
    if deadline is not None and not (isinstance(deadline, (int, float)) and math.isfinite(deadline) and deadline > 0):
        raise ConfigError(f"`deadline` must be a finite number of seconds > 0 or None, got {deadline}")
