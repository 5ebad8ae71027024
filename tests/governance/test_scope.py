from __future__ import annotations

import asyncio
import re
import threading

import pytest

from parsimon.governance import Scope, current_scope, new_run_id, run_scope


def test_outside_any_scope_is_empty():
    assert current_scope() == Scope(None, None)


def test_new_run_id_format_and_uniqueness():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"run-\d{8}T\d{6}-[0-9a-f]{8}", i) for i in ids)


def test_nested_scopes_inherit_and_restore():
    with run_scope("r1", workflow="w1") as outer:
        assert outer == Scope("r1", "w1") == current_scope()
        with run_scope(workflow="w2") as inner:
            assert inner == Scope("r1", "w2")
        with run_scope("r2") as inner:
            assert inner == Scope("r2", "w1")
        assert current_scope() == Scope("r1", "w1")
    assert current_scope() == Scope(None, None)


def test_run_created_only_when_none_is_set():
    with run_scope(workflow="w") as s:
        assert re.fullmatch(r"run-\d{8}T\d{6}-[0-9a-f]{8}", s.run)
        with run_scope() as inner:
            assert inner.run == s.run and inner.workflow == "w"


def test_scope_restored_after_exception():
    with pytest.raises(RuntimeError), run_scope("boom"):
        raise RuntimeError
    assert current_scope().run is None


def test_threads_and_tasks_are_isolated():
    seen = {}

    def worker(name):
        with run_scope(name):
            seen[name] = current_scope().run

    with run_scope("main"):
        threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert current_scope().run == "main"
    assert seen == {f"t{i}": f"t{i}" for i in range(4)}

    async def task(name):
        with run_scope(name):
            await asyncio.sleep(0)
            return current_scope().run

    async def both():
        return await asyncio.gather(task("a"), task("b"))

    assert asyncio.run(both()) == ["a", "b"]


@pytest.mark.parametrize("kw", [{"run": ""}, {"workflow": 3}])
def test_bad_scope_arguments(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"`{name}`"), run_scope(**kw):
        pass
