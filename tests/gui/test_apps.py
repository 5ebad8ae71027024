"""Our apps on a desktop browser under governance: the oracle, escalation of "Pay now", the audit trail,
feedback events, the transition log and exact replay."""

from __future__ import annotations

import json

import pytest

from parsimon.governance import CallbackSink, FeedbackEmitter, get_audit_log, run_scope
from parsimon.gui.agent import run_episode
from parsimon.gui.policies.replay import ReplayPolicy
from parsimon.gui.policies.rule import RulePolicy
from parsimon.gui.suites.apps import AppTask
from parsimon.gui.transitions import TransitionRecorder, read_transitions
from parsimon.gui.web.env import BrowserEnv

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def env(session):
    e = BrowserEnv(session=session)
    yield e
    e.close()


def _pixels(path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=int)


def _pay_slot():
    for k in range(8):
        task = AppTask(f"checkout-L2-{k}")
        if task.instance(0).ops[-1].kind == "checkout.pay":
            return task
    raise AssertionError("no paying slot")


@pytest.mark.parametrize("slot", ["todo-L3-1", "inbox-L3-2", "settings-L3-0", "table-L4-1"])
def test_rule_policy_meets_the_oracle(env, slot):
    task = AppTask(slot)
    obs, info = env.reset(seed=0, options={"task": task})
    assert info["state"] is not None and not task.status(env.page).info["solved_now"]
    res = run_episode(env, RulePolicy(), task, 0)
    assert res.success and res.ended_by == "agent", [r.error for r in res.records]


def test_pay_is_escalated_refused_and_audited(env):
    task = _pay_slot()
    events = []
    feedback = FeedbackEmitter("verbose", sinks=[CallbackSink(events.append)])
    with run_scope(run="run-test-pay") as scope:
        res = run_episode(env, RulePolicy(), task, 0, approve="deny", feedback=feedback, audit=get_audit_log())
    assert not res.success and res.ended_by == "refused" and res.refused == 1
    assert task.state(env.page)["paid"] is False  # the click never happened
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "final" and "needs_user" in kinds
    assert kinds.index("needs_user") < len(kinds) - 1
    log = get_audit_log()
    records = log.records(run=scope.run)
    assert ("escalation", "decide", "refuse") in [(r.actor, r.action, r.outcome) for r in records]
    acted = [r for r in records if r.actor == "gui.rule"]
    assert acted and all(len(r.before["screenshot_sha256"]) == 64 and len(r.after["screenshot_sha256"]) == 64
                         for r in acted)
    assert all(r.run == "run-test-pay" for r in records)
    assert log.verify().ok


def test_pay_approved_completes_the_order(env):
    task = _pay_slot()
    res = run_episode(env, RulePolicy(), task, 0, approve="auto")
    assert res.success and res.ended_by == "task" and task.state(env.page)["paid"] is True


def test_transitions_and_exact_replay(env, tmp_path):
    task = AppTask("todo-L4-3")
    rec = TransitionRecorder(tmp_path / "tr")
    first = run_episode(env, RulePolicy(), task, 2, recorder=rec)
    assert first.success
    trs = read_transitions(tmp_path / "tr")
    assert len(trs) == first.steps and trs[0]["step"] == 1
    t = trs[0]
    assert set(t) >= {"state", "action", "next_state", "reward", "terminated"}
    assert (tmp_path / "tr" / t["state"]["screenshot"]).is_file() and (tmp_path / "tr" / t["next_state"]["dom"]).is_file()
    assert t["state"]["app_state"]["items"] and t["state"]["axtree"]
    typed = next(x for x in trs if x["action"]["kind"] == "type")
    dom = (tmp_path / "tr" / typed["next_state"]["dom"]).read_text()
    assert f'value="{typed["action"]["text"]}"' in dom  # the live field value is in the frozen DOM
    steps = tmp_path / "steps.jsonl"
    steps.write_text("\n".join(json.dumps({"task": r.task, "seed": r.seed, "action": r.action}) for r in first.records))
    again = run_episode(env, ReplayPolicy(trajectory=steps), task, 2, recorder=TransitionRecorder(tmp_path / "re"))
    assert again.success and [r.action for r in again.records] == [r.action for r in first.records]
    # the replay reaches the same pages: the same frozen DOM after every step, and the same screen up to
    # rasterisation noise (on a loaded machine Chromium drew 2 of 480,000 pixels one level apart)
    replayed = read_transitions(tmp_path / "re")
    assert len(replayed) == len(trs)
    for a, b in zip(trs[:-1], replayed[:-1], strict=True):
        assert a["next_state"]["dom"] == b["next_state"]["dom"]  # files named by their content's hash
        x, y = (_pixels(tmp_path / d / t["next_state"]["screenshot"]) for d, t in (("tr", a), ("re", b)))
        assert x.shape == y.shape and (abs(x - y) > 2).sum() == 0 and (x != y).any(axis=-1).sum() <= 50


@pytest.mark.parametrize(("text", "clear"), [("nails", True), ("7", True), ("Filter papers", True), ("nails", False),
                                             ("2", False)])
def test_the_rule_world_model_types_into_a_number_field_as_chromium_does(env, text, clear):
    from parsimon.gui.actions import Action, Element
    from parsimon.gui.world_model.delta import PageState, SetValue
    from parsimon.gui.world_model.metrics import true_delta
    from parsimon.gui.world_model.rules import RuleWorldModel

    obs, _ = env.reset(seed=0, options={"task": AppTask("table-L1-0")})
    field = next(e for e in obs.interactive() if e.type == "number" and e.value)
    typing = Action("type", target=Element(field.pid), text=text, clear=clear)
    predicted = next(op.value for op in RuleWorldModel().predict(obs, typing).delta.ops if isinstance(op, SetValue))
    after, *_ = env.step(typing)
    shown = next(e for e in after.elements if e.pid == field.pid).value or ""
    assert predicted == shown, (field.value, text, clear, shown)
    truth = [op for op in true_delta(PageState.from_observation(obs), PageState.from_observation(after)).ops
             if isinstance(op, SetValue)]
    assert truth == ([SetValue(field.pid, shown)] if shown != field.value else [])
