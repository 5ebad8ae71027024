"""Concurrent clients against one hard budget: reservations keep the spend under the limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from parsimon.gateway.mock import MockUpstream
from parsimon.governance import get_audit_log, get_ledger
from tests.gateway.conftest import one_model


def test_eight_clients_never_overshoot_one_hard_budget(serve):
    hard = 1.0
    with MockUpstream("echo", delay_s=0.02) as up:  # calls overlap in the upstream
        gw = serve(one_model(up.base_url, price_in=1.0, price_out=1.0, extra=f"""
[keys.k]
token = "sk-k"
workflow = "shared"
[[budget]]
workflow = "shared"
metric = "money"
hard = {hard}
"""))
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}

        def client(i: int) -> list[int]:
            with httpx.Client(base_url=gw.base_url, headers={"Authorization": "Bearer sk-k"}, timeout=30) as c:
                return [c.post("/chat/completions", json=body).status_code for _ in range(12)]

        with ThreadPoolExecutor(8) as pool:
            codes = [c for cs in pool.map(client, range(8)) for c in cs]
    ok, refused = codes.count(200), codes.count(402)
    assert ok + refused == len(codes) and ok > 0 and refused > 0
    ledger = get_ledger()
    spent = ledger.spent(workflow="shared", metric="money")
    assert spent <= hard
    assert ledger.reserved(workflow="shared", metric="money") == 0.0
    events = ledger.events(workflow="shared")
    assert len(events) == ok and sum(e.money for e in events) == pytest.approx(spent)
    # every answered call is in the log, and the log verifies
    calls = [r for r in get_audit_log().records() if r.action == "model.call" and r.outcome == "ok"]
    assert len(calls) == ok and get_audit_log().verify().ok
