"""The gateway's quick end-to-end checks for ``parsimon reproduce`` (governance section).

Everything runs in this process on loopback, against mock upstreams, in about twenty seconds:

1. added latency: sequential calls straight to a mock upstream and through the gateway (key, hard budget,
   ledger and proof-of-action log on the path), alternating, percentiles of each;
2. 8 concurrent clients against one hard money budget: what the answered calls cost against the limit;
3. a call a policy sends to a person: held open, approved from the approval store, answered;
4. a receipt of the run's records, verified offline with the public key alone;
5. the cascade on arithmetic questions: a weak cheap mock (right half the time, its confidence carrying
   signal) then an exact, 100x pricier one: cost and accuracy of cheap-only, strong-only and the cascade.

The benchmark (``benchmarks/gateway_bench.py``) measures the same with processes, load and LiteLLM beside it.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

__all__ = ["run_checks"]

_KEY = {"Authorization": "Bearer sk-check"}


def _config(weak: str, strong: str, echo: str):
    from parsimon.gateway.config import config_from_document
    from parsimon.governance.document import parse_document

    text = f"""
[gateway]
port = 0
approval_wait_s = 20
checkpoint_interval_s = 0
[upstreams.echo]
base_url = "{echo}"
[upstreams.weak]
base_url = "{weak}"
[upstreams.strong]
base_url = "{strong}"
[models.fast]
upstream = "echo"
price_in_per_1k = 1
price_out_per_1k = 1
[models.weak]
upstream = "weak"
price_in_per_1k = 0.01
price_out_per_1k = 0.01
[models.strong]
upstream = "strong"
price_in_per_1k = 1
price_out_per_1k = 1
[cascades.auto]
models = ["weak", "strong"]
threshold = 0.65
[keys.check]
token = "sk-check"
workflow = "reproduce-gateway"
[[rule]]
name = "payments-need-a-person"
on = "model"
args = {{ content = "*wire the money*" }}
effect = "require_approval"
[[budget]]
workflow = "reproduce-gateway"
metric = "money"
hard = 1000.0
"""
    return config_from_document(parse_document(text, fmt="toml", source="reproduce-gateway.toml"))


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p * len(xs)) - 1))] * 1000


def _latency(direct: str, gw: str, n: int) -> dict:
    body = {"messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 8}
    lat: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=30) as c:
        for i in range(n + 50):
            for name, url, model, headers in (("direct", direct, "mock", {}),
                                              ("gateway", gw, "fast", _KEY)):
                t = time.perf_counter()
                r = c.post(f"{url}/chat/completions", json={**body, "model": model}, headers=headers)
                r.raise_for_status()
                if i >= 50:  # the first 50 warm up connections and caches
                    lat[name].append(time.perf_counter() - t)
    out = {k: {"p50_ms": _pct(v, 0.5), "p99_ms": _pct(v, 0.99)} for k, v in lat.items()}
    out["added_p50_ms"] = out["gateway"]["p50_ms"] - out["direct"]["p50_ms"]
    out["added_p99_ms"] = out["gateway"]["p99_ms"] - out["direct"]["p99_ms"]
    out["n"] = n
    return out


def _budget(gw_url: str, ledger, reps: int) -> dict:
    limit = 0.5
    rows = []
    for rep in range(reps):
        run = f"reproduce-budget-{time.time_ns()}-{rep}"
        ledger.set_budget(run=run, metric="money", hard=limit)

        def client(_, run=run):
            ok = 0
            with httpx.Client(timeout=30, headers={"X-Parsimon-Run": run, **_KEY}) as c:
                for _ in range(30):
                    r = c.post(f"{gw_url}/chat/completions", json={"model": "fast", "max_tokens": 16,
                                                                   "messages": [{"role": "user", "content": "hello"}]})
                    if r.status_code != 200:
                        break
                    ok += 1
            return ok

        with ThreadPoolExecutor(8) as pool:
            answered = sum(pool.map(client, range(8)))
        rows.append({"limit": limit, "spent": ledger.spent(run=run, metric="money"), "answered": answered})
    return {"reps": rows, "max_overshoot": max(max(0.0, r["spent"] - r["limit"]) for r in rows),
            "mean_spent_fraction": statistics.mean(r["spent"] / r["limit"] for r in rows)}


def _approval(gw_url: str, store) -> dict:
    from parsimon.llm import ChatClient

    out: dict[str, Any] = {}

    def agent():
        with ChatClient(base_url=gw_url, model="fast", api_key="sk-check", max_retries=0, timeout=30) as c:
            t = time.perf_counter()
            out["reply"] = c.chat([{"role": "user", "content": "Please wire the money to ACME."}], max_tokens=8).text
            out["waited_s"] = time.perf_counter() - t

    t = threading.Thread(target=agent)
    t.start()
    deadline = time.time() + 20
    while not store.list("pending") and time.time() < deadline:
        time.sleep(0.02)
    pending = store.list("pending")
    out["pending_seen"] = len(pending)
    if pending:
        time.sleep(0.3)  # the person takes a moment
        store.decide(pending[0].id, approve=True, by="reproduce:reviewer")
        out["rule"] = pending[0].rule
    t.join(30)
    return out


def _cascade(gw_url: str, n: int) -> dict:
    questions = [(f"What is {a} + {b}?", str(a + b)) for a, b in ((i * 7 % 50, i * 13 % 40) for i in range(n))]
    res = {}
    with httpx.Client(base_url=gw_url, timeout=30, headers=_KEY) as c:
        for model in ("weak", "strong", "auto"):
            correct, cost = 0, 0.0
            for q, truth in questions:
                r = c.post("/chat/completions", json={"model": model, "max_tokens": 8,
                                                      "messages": [{"role": "user", "content": q}]})
                r.raise_for_status()
                correct += (r.json()["choices"][0]["message"]["content"] or "").strip() == truth
                cost += float(r.headers["x-parsimon-cost"])
            res[model] = {"accuracy": correct / n, "cost": cost}
    return res


def run_checks(out_dir: Path, *, quick: bool = True) -> dict:
    """Run the checks (see the module docstring); return their numbers (the receipt goes to ``out_dir``)."""
    from parsimon.gateway.mock import MockUpstream
    from parsimon.gateway.server import GatewayServer
    from parsimon.governance import ApprovalStore, get_audit_log, get_ledger
    from parsimon.governance.receipts import export_receipt, load_signing_key, public_key_pem, verify_receipt

    out_dir.mkdir(parents=True, exist_ok=True)
    with MockUpstream("echo", name="echo") as echo, \
            MockUpstream("arithmetic", accuracy=0.5, name="weak") as weak, \
            MockUpstream("arithmetic", accuracy=1.0, name="strong") as strong:
        cfg = _config(weak.base_url, strong.base_url, echo.base_url)
        with GatewayServer(cfg) as gw:
            latency = _latency(echo.base_url, gw.base_url, 300 if quick else 1500)
            budget = _budget(gw.base_url, get_ledger(), 3 if quick else 20)
            approval = _approval(gw.base_url, ApprovalStore())
            cascade = _cascade(gw.base_url, 40 if quick else 200)
        key = load_signing_key()
        receipt_path = out_dir / "gateway_receipt.json"
        bundle = export_receipt(get_audit_log(), receipt_path, key=key, run="gateway-check")
        (out_dir / "gateway_receipt.pub.pem").write_text(public_key_pem(key))
        report = verify_receipt(receipt_path, public_key_pem(key))
    return {"latency": latency, "budget": budget, "approval": approval, "cascade": cascade,
            "receipt": {"records": len(bundle["records"]), "ok": report.ok, "reason": report.reason,
                        "path": str(receipt_path)}}
