"""The GUI agent points at the governance gateway by base URL alone: its model calls are governed there."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def test_gui_agent_through_the_gateway(session):
    from parsimon.gateway import GatewayServer
    from parsimon.gateway.mock import MockUpstream
    from parsimon.governance import get_audit_log, get_ledger
    from parsimon.gui.agent import run_episode
    from parsimon.gui.policies.textpolicy import AXTreePolicy
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv
    from tests.gateway.conftest import gateway_config, one_model

    asked: list[list[str]] = []

    def reply(body: dict) -> tuple[str, float]:
        # the constrained policy sends its action space as a JSON schema; answer with a listed action
        fmt = body["response_format"]
        choices = fmt.get("json_schema", fmt)["schema"]["properties"]["action"]["enum"]
        asked.append(choices)
        click = [c for c in choices if c.lower().startswith("click")]
        return json.dumps({"action": (click or choices)[0]}), 0.9

    keys = '\n[keys.gui]\ntoken = "sk-gui"\nworkflow = "gui-eval"\n'
    with MockUpstream(reply) as up:
        gw = GatewayServer(gateway_config(one_model(up.base_url, extra=keys))).start()
        try:
            pol = AXTreePolicy(base_url=gw.base_url, model="default", api_key="sk-gui")
            env = BrowserEnv(session=session, observe_dom=False)
            try:
                res = run_episode(env, pol, MiniWoBTask("click-button"), 0, max_steps=2)
            finally:
                env.close()
                pol.close()
        finally:
            gw.stop()
    assert res.decisions >= 1 and res.invalid == 0 and asked
    calls = [r for r in get_audit_log().records() if r.action == "model.call"]
    assert calls and all(r.actor == "key:gui" and r.outcome == "ok" for r in calls)
    assert len(calls) == res.decisions
    charged = [e for e in get_ledger().events() if e.workflow == "gui-eval" and e.money > 0]
    assert len(charged) == len(calls)  # charged once per call, by the gateway, to the key's workflow
