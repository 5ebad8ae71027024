"""The project's agents point at the gateway by base URL alone: every call is then governed and logged there.

The GUI agent's test is tests/gui/test_gateway_agent.py (it needs the browser fixture).
"""

from __future__ import annotations

import numpy as np

from parsimon.gateway.mock import MockUpstream
from parsimon.governance import get_audit_log, get_ledger
from tests.gateway.conftest import one_model

KEYS = """
[keys.cta]
token = "sk-cta"
workflow = "cta-eval"
[keys.evolve]
token = "sk-evolve"
workflow = "games-evolve"
"""


def test_cta_llm_agent_through_the_gateway(serve, monkeypatch):
    from parsimon.cta import evaluate
    from parsimon.cta.pandora import PandoraTask

    with MockUpstream(lambda body: ("GUESS B", 0.9)) as up:
        gw = serve(one_model(up.base_url, extra=KEYS))
        monkeypatch.setenv("PARSIMON_LLM_BASE_URL", gw.base_url)
        monkeypatch.setenv("PARSIMON_LLM_MODEL", "default")
        monkeypatch.setenv("PARSIMON_LLM_API_KEY", "sk-cta")
        tasks = [PandoraTask(["A", "B", "C"], {"A": 0.2, "B": 0.7, "C": 0.1}, 0.5, "B", task_id="a")]
        m = evaluate("pandora", "llm-cta", tasks, prior="true", policy_kwargs={"output": "free"})
    assert m.mean_reward == 1.0 and m.policy_stats["llm_calls"] == 1
    assert "Prior Probabilities" in up.requests[0]["json"]["messages"][1]["content"]
    calls = [r for r in get_audit_log().records() if r.action == "model.call"]
    assert [(r.actor, r.outcome) for r in calls] == [("key:cta", "ok")]
    llm = [e for e in get_ledger().events() if e.component == "cta.llm"]
    assert len(llm) == 1 and llm[0].workflow == "cta-eval"  # charged once, by the gateway, to the key's workflow


REPLY = """<<<<<<< SEARCH
        w = (iteration_number + 1) * reach_prob
=======
        w = (iteration_number + 1) ** 2 * reach_prob
>>>>>>> REPLACE
"""


def test_games_evolution_mutator_through_the_gateway(serve):
    from parsimon.games.candidate import SEED_CFR_PLUS
    from parsimon.games.evolve.mutate import LLMMutator

    with MockUpstream(lambda body: (REPLY, 0.9)) as up:
        gw = serve(one_model(up.base_url, extra=KEYS))
        mutator = LLMMutator(base_url=gw.base_url, model="m", api_key="sk-evolve", max_retries=0,
                              output="free")
        mutation = mutator.mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
    assert "** 2 * reach_prob" in mutation.source
    rec = [r for r in get_audit_log().records() if r.action == "model.call"][0]
    assert rec.actor == "key:evolve" and rec.outcome == "ok"
    events = [e for e in get_ledger().events() if e.component == "games.evolve.llm"]
    assert len(events) == 1 and events[0].workflow == "games-evolve"
    assert mutation.usage["cost"] == events[0].money > 0
