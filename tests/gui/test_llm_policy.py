"""The constrained small-model policy with the real local SmolLM2-135M: every reply is a valid action."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.llm, pytest.mark.browser]


def test_axtree_json_policy_never_emits_an_invalid_action(session):
    pytest.importorskip("llama_cpp")
    from parsimon.gui.agent import run_episode
    from parsimon.gui.policies.textpolicy import AXTreePolicy
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv
    from parsimon.llm import ChatClient, LocalServer

    with LocalServer(port=0) as srv:
        pol = AXTreePolicy(ChatClient(base_url=srv.base_url))
        env = BrowserEnv(session=session, observe_dom=False)
        try:
            results = [run_episode(env, pol, MiniWoBTask(t), 0, max_steps=4) for t in ("click-button", "enter-text")]
        finally:
            env.close()
            pol.close()
    decisions = sum(r.decisions for r in results)
    assert decisions >= 2 and sum(r.invalid for r in results) == 0
    assert all(r.tokens > 0 for r in results)
