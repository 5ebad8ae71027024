"""Evaluation plumbing without a browser: seeds, task groups, bootstrap intervals, summaries, the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.errors import ConfigError
from parsimon.gui.evaluate import EvalConfig, bootstrap_ci, parse_seeds, resolve_tasks, summarize


def test_parse_seeds():
    assert parse_seeds("0-9") == tuple(range(10))
    assert parse_seeds("1,3,5") == (1, 3, 5)
    assert parse_seeds("0-2,2,7") == (0, 1, 2, 7)
    for bad in ("a", "3-1", "1;2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_task_groups():
    dom = resolve_tasks("miniwob", "dom")
    visual = resolve_tasks("miniwob", "visual")
    assert len(dom) + len(visual) == 130 and not set(dom) & set(visual)
    assert len(resolve_tasks("miniwob", "rule")) >= 40
    assert set(resolve_tasks("miniwob", "rule")) <= set(dom)
    assert resolve_tasks("apps", "todo")[0] == "todo-L1-0" and len(resolve_tasks("apps", "todo")) == 48
    assert len(resolve_tasks("apps", "L3")) == 40
    assert resolve_tasks("desktop", None)[0] == "notes-L2-0"
    with pytest.raises(ConfigError, match="not a task or group"):
        resolve_tasks("apps", "spreadsheet")


def test_config_validation():
    with pytest.raises(ConfigError, match="approve"):
        EvalConfig(approve="maybe")
    with pytest.raises(ConfigError, match="policy_kwargs"):
        EvalConfig(policy_kwargs="[1]")
    with pytest.raises(ConfigError, match="seeds"):
        EvalConfig(seeds=())


def test_bootstrap_interval_brackets_the_mean():
    lo, hi = bootstrap_ci([1.0] * 7 + [0.0] * 3, resamples=4000)
    assert lo < 0.7 < hi and 0.3 < lo and hi <= 1.0
    assert bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)
    assert bootstrap_ci([]) == (0.0, 0.0)


def test_summarize_counts_invalid_actions_and_step_time():
    eps = [{"task": "a", "seed": s, "success": s % 2 == 0, "steps": 3, "decisions": 4, "invalid": 1, "refused": 0,
            "seconds": 1.0} for s in range(4)]
    steps = [{"task": "a", "action": {"kind": "click"}, "seconds": 0.1}] * 6 + [{"task": "a", "action": None,
                                                                               "seconds": 0.5}]
    r = summarize(eps, steps, EvalConfig())
    assert r.success_rate == 0.5 and r.invalid_rate == 0.25 and r.episodes == 4
    assert r.seconds_per_step == pytest.approx(0.1) and r.per_task["a"]["mean_steps"] == 3


def test_cli_lists_and_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["gui", "list"])
    assert res.exit_code == 0 and "miniwob" in res.output and "axtree-json" in res.output
    res = runner.invoke(app, ["gui", "tasks", "--suite", "apps", "--group", "checkout"])
    assert res.exit_code == 0 and res.output.split()[0] == "checkout-L1-0"
    res = runner.invoke(app, ["gui", "eval", "--suite", "miniwob", "--tasks", "no-such-task", "--out",
                              str(tmp_path / "r")])
    assert res.exit_code == 2 and "error: `--tasks`" in res.output
    res = runner.invoke(app, ["gui", "eval", "--suite", "tv"])
    assert res.exit_code == 2
