"""MiniWoB++ through our environment: the episode protocol, hidden reward panel, rule and proposal policies."""

from __future__ import annotations

import pytest

from parsimon.gui.actions import Action, Element
from parsimon.gui.agent import run_episode
from parsimon.gui.policies.proposal import ProposalPolicy
from parsimon.gui.policies.rule import RulePolicy
from parsimon.gui.suites.miniwob import VISUAL_TASKS, MiniWoBTask, all_tasks, dom_tasks, page_seed
from parsimon.gui.web.env import BrowserEnv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env(session):
    e = BrowserEnv(session=session, observe_dom=False)
    yield e
    e.close()


def test_task_lists():
    assert len(all_tasks()) == 130
    assert len(dom_tasks()) == 130 - len(VISUAL_TASKS) and "click-button" in dom_tasks()
    assert VISUAL_TASKS <= set(all_tasks())
    assert page_seed(0) == 985772  # numpy.random.RandomState(0).randint(0, 1_000_000), BrowserGym's rule


def test_protocol_rewards_and_hidden_panel(env):
    obs, info = env.reset(seed=0, options={"task": MiniWoBTask("click-button")})
    assert info["goal"] == 'Click on the "no" button.'
    assert "Last reward" not in obs.axtree and not any(e.id == "reward-display" for e in obs.elements)
    wrong = next(e for e in obs.interactive() if e.tag == "button" and e.text != "no")
    obs, reward, terminated, _, info = env.step(Action("click", target=Element(wrong.pid)))
    assert terminated and info["raw_reward"] == -1.0 and not info["success"] and reward == -1.0
    obs, info = env.reset(seed=0, options={"task": MiniWoBTask("click-button")})
    right = next(e for e in obs.interactive() if e.text == "no")
    obs, reward, terminated, _, info = env.step(Action("click", target=Element(right.pid)))
    assert terminated and info["raw_reward"] == 1.0 and info["success"]
    assert 0.99 < reward <= 1.0  # discounted by the (virtual) seconds taken


@pytest.mark.parametrize("task,seed", [("click-checkboxes", 1), ("enter-text", 2), ("email-inbox-reply", 0),
                                       ("search-engine", 1), ("click-tab-2", 3)])
def test_rule_policy_solves(env, task, seed):
    res = run_episode(env, RulePolicy(), MiniWoBTask(task), seed)
    assert res.success, (task, seed, res.ended_by, [r.error for r in res.records])


def test_proposal_policy_solves_a_simple_task(env):
    res = run_episode(env, ProposalPolicy(), MiniWoBTask("click-button"), 3)
    assert res.success and res.steps == 1 and res.invalid == 0
