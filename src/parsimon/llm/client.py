"""An OpenAI-compatible chat-completions client with retries, timeouts and cost accounting.

Every call is checked against the governance ledger's budgets before it is sent (with an estimate of
the prompt's tokens) and charged to the ledger afterwards with the token counts the endpoint reported.

Behind the governance gateway (``parsimon gateway serve``; point ``base_url`` at it), each request carries
the current run, workflow and component (``X-Parsimon-Run``/``-Workflow``/``-Component``) so the gateway
charges them; a reply marked ``X-Parsimon-Charged: 1`` is not charged a second time here. A call the
gateway holds for a person's approval raises :class:`~parsimon.errors.ApprovalPending` (keep its
``resume_token`` and pass it back as ``chat(..., resume_token=...)``); a rejected one raises
:class:`~parsimon.errors.ApprovalRejected`.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx

from parsimon.errors import ApprovalPending, ApprovalRejected, LLMError, MalformedReply
from parsimon.llm.config import LLMConfig
from parsimon.llm.types import ChatResponse, Usage

__all__ = ["ChatClient", "RETRY_STATUS"]

# 408 request timeout, 409 conflict (some gateways), 429 rate limit, and server errors are transient.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_RETRY_EXC = (httpx.ConnectError, httpx.ReadTimeout, httpx.WriteTimeout, httpx.ConnectTimeout,
              httpx.PoolTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _estimate_tokens(messages: list[dict[str, Any]]) -> int:
    # About four characters a token for English text; only used for the budget pre-check.
    return sum(len(str(m.get("content", ""))) for m in messages) // 4 + 4 * len(messages)


def _parse_reply(body: bytes) -> tuple[str, str, Usage, str, dict]:
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
    usage_raw = data.get("usage") or {}
    if not isinstance(usage_raw, dict):
        raise MalformedReply(f"`usage` is not an object: {usage_raw!r:.200}")
    try:
        usage = Usage(int(usage_raw.get("prompt_tokens", 0) or 0), int(usage_raw.get("completion_tokens", 0) or 0))
    except (TypeError, ValueError) as exc:
        raise MalformedReply(f"`usage` has non-integer token counts: {usage_raw!r:.200}") from exc
    return content, str(choices[0].get("finish_reason") or "stop"), usage, str(data.get("model") or ""), data


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


class ChatClient:
    """Chat completions from any OpenAI-compatible endpoint (the local SmolLM2 server by default).

    Args:
        base_url: endpoint base URL ending in ``/v1``; default ``$PARSIMON_LLM_BASE_URL`` or the local
            server ``http://127.0.0.1:8765/v1``.
        model: model name; default ``$PARSIMON_LLM_MODEL`` or ``smollm2-135m-instruct``.
        api_key: bearer token; default ``$PARSIMON_LLM_API_KEY`` or ``$OPENAI_API_KEY``.
        timeout: seconds for one HTTP attempt (connect, read and write).
        max_retries: further attempts after the first on 408/409/429/5xx and connection errors.
        backoff: first retry delay in seconds; doubles each retry, with ±25 % jitter, capped at
            ``max_backoff``; a ``Retry-After`` header (seconds) is honoured up to the same cap.
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
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        price_in_per_1k: float | None = None,
        price_out_per_1k: float | None = None,
        component: str = "llm",
        ledger: bool = True,
    ):
        if timeout <= 0:
            raise ValueError(f"`timeout` must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be >= 0, got {max_retries}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("`backoff` and `max_backoff` must be >= 0")
        self.config = LLMConfig.resolve(base_url, model, api_key, price_in_per_1k, price_out_per_1k)
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.component, self.use_ledger = component, ledger
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers)
        self._sleep = time.sleep  # replaced in tests to keep them fast

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def model(self) -> str:
        return self.config.model

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after:
                try:
                    return min(float(retry_after), self.max_backoff)
                except ValueError:
                    pass
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
            response_format: e.g. ``{"type": "json_object"}`` where the endpoint supports it.
            seed: sampling seed where the endpoint supports it.
            resume_token: behind the gateway: resume a call that waited for approval (from
                :class:`~parsimon.errors.ApprovalPending`), also from a restarted process.
            request_id: behind the gateway: an idempotency key; re-sending a call that waits for approval
                with the same id finds its approval.
            **extra: further fields passed through in the request body.

        Raises:
            ValueError: ``messages`` is empty or malformed.
            BudgetExceeded: a hard budget would be crossed (nothing was sent).
            MalformedReply: the endpoint answered 200 with something that is not a chat completion.
            LLMError: the endpoint refused the request, or failed after all retries.
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

        ledger = self._ledger()
        if ledger is not None:
            est = _estimate_tokens(messages)
            ledger.precheck(
                component=self.component, tokens_in=est, tokens_out=0,
                money=self.config.cost(est, 0),
            )
        url = f"{self.config.base_url}/chat/completions"
        headers = self._scope_headers()
        if resume_token is not None:
            headers["X-Parsimon-Resume-Token"] = resume_token
        if request_id is not None:
            headers["X-Parsimon-Request-Id"] = request_id
        last_error = ""
        attempts = 0
        t_start = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            attempts = attempt + 1
            response: httpx.Response | None = None
            t0 = time.perf_counter()
            try:
                response = self._http.post(url, json=body, headers=headers)
            except _RETRY_EXC as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                raise LLMError(f"request to {url} failed: {type(exc).__name__}: {exc}") from exc
            if response is not None:
                if response.status_code == 200:
                    text, finish, usage, model, raw = _parse_reply(response.content)
                    latency = time.perf_counter() - t0
                    cost = self.config.cost(usage.prompt_tokens, usage.completion_tokens)
                    charged = response.headers.get("x-parsimon-charged") == "1"
                    if charged:  # the gateway charged it (at its prices) to this run
                        try:
                            cost = float(response.headers.get("x-parsimon-cost", cost))
                        except ValueError:
                            pass
                    if ledger is not None and not charged:
                        ledger.charge(
                            component=self.component,
                            tokens_in=usage.prompt_tokens,
                            tokens_out=usage.completion_tokens,
                            money=cost,
                            wall_s=time.perf_counter() - t_start,
                            meta={"model": model or self.config.model, "attempts": attempts,
                                  "base_url": self.config.base_url},
                        )
                    return ChatResponse(text, finish, usage, cost, latency, model or self.config.model, attempts, raw)
                excerpt = response.text[:300]
                _raise_approval(response)
                if response.status_code not in RETRY_STATUS:
                    raise LLMError(f"{url} answered HTTP {response.status_code}: {excerpt}")
                last_error = f"HTTP {response.status_code}: {excerpt}"
            if attempt < self.max_retries:
                self._sleep(self._delay(attempt, response))
        raise LLMError(f"{url} failed after {attempts} attempt(s); last error: {last_error}")

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
