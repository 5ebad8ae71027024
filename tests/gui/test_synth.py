"""DAG-based task synthesis: the grammar reads back, the oracle judges the model's end state, slots scale."""

from __future__ import annotations

import copy
import random

import pytest

from parsimon.errors import ConfigError
from parsimon.gui.suites.apps import slot_names
from parsimon.gui.suites.synth import APPS, Op, check, goal_of, parse_instruction, read_path, synthesize


@pytest.mark.parametrize("app", APPS)
def test_instructions_read_back_and_goals_hold_only_after_the_steps(app):
    lengths = range(2, 7) if app == "settings" else range(1, 7)
    for n in lengths:
        for k in range(6):
            task = synthesize(app, n, random.Random(f"{app}-{n}-{k}"))
            assert len(task.ops) == n
            assert parse_instruction(task.instruction) == (app, task.ops)
            assert not check(task.goal, task.state), task.instruction
            model = copy.deepcopy(task.state)
            for op in task.ops:
                assert op.spec.pre(model, op.args), op.text()
                op.spec.apply(model, op.args)
            assert check(task.goal, model), task.instruction


def test_commits_come_last_and_depend_on_everything():
    for k in range(20):
        t = synthesize("settings", 4, random.Random(k))
        assert t.ops[-1].kind == "settings.save" and [o.kind for o in t.ops[:-1]].count("settings.save") == 0
        assert {(i, 3) for i in range(3)} <= set(t.edges)
    pays = [synthesize("checkout", 3, random.Random(k)) for k in range(40)]
    for t in pays:
        assert all(o.kind != "checkout.pay" for o in t.ops[:-1])
    assert any(t.ops[-1].kind == "checkout.pay" for t in pays)


def test_dependency_edges_follow_shared_entities():
    t = synthesize("todo", 2, random.Random(0), state={"items": []})
    # with an empty list the only possible first step is an add; a second step on the same item depends on it
    assert t.ops[0].kind == "todo.add"
    if t.ops[1].args == t.ops[0].args:
        assert (0, 1) in t.edges


def test_no_step_undoes_an_earlier_one():
    for k in range(60):
        t = synthesize("inbox", 5, random.Random(k))
        model = copy.deepcopy(t.state)
        for op in t.ops:
            op.spec.apply(model, op.args)
        touched = {tuple(p) for p, _ in t.goal["expect"]}
        changed = [p for p in touched if read_path("inbox", model, p) != read_path("inbox", t.state, p)]
        assert changed, t.instruction


def test_oracle_rejects_side_effects_that_matter():
    t = synthesize("checkout", 1, random.Random(3))
    if t.ops[0].kind == "checkout.pay":
        t = synthesize("checkout", 1, random.Random(4))
    model = copy.deepcopy(t.state)
    t.ops[0].spec.apply(model, t.ops[0].args)
    assert check(t.goal, model)
    model["paid"] = True  # paying was not asked for
    assert not check(t.goal, model)
    assert not check(t.goal, None)


def test_slots_scale_to_more_than_200_tasks_of_lengths_1_to_6():
    names = slot_names()
    assert len(names) == 232
    assert {int(n.split("-L")[1].split("-")[0]) for n in names} == {1, 2, 3, 4, 5, 6}


def test_errors():
    with pytest.raises(ConfigError, match="length"):
        synthesize("todo", 0, random.Random(0))
    with pytest.raises(ConfigError, match="app"):
        synthesize("spreadsheet", 2, random.Random(0))
    with pytest.raises(ConfigError, match="cannot read"):
        parse_instruction("In the To-do app, dance.")
    with pytest.raises(ConfigError, match="not possible"):
        goal_of("todo", {"items": []}, [Op("todo.complete", ("x",))])
