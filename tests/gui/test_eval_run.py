"""``parsimon gui eval`` end to end: the run folder, resume without repeats, replay of a logged run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.gui.evaluate import EvalConfig, evaluate
from parsimon.run import read_run

pytestmark = pytest.mark.browser


def test_cli_eval_writes_the_run_folder_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["gui", "eval", "--suite", "miniwob", "--tasks", "click-button,focus-text", "--seeds", "0-1",
            "--policy", "rule", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "success 100.0%" in res.output
    run = read_run(out)
    assert run["status"] == "ok" and run["metrics"]["episodes"] == 4 and run["metrics"]["success_rate"] == 1.0
    assert (out / "figures" / "success.png").is_file() and (out / "figures" / "step_time.png").is_file()
    results = json.loads((out / "results.json").read_text())
    assert set(results["per_task"]) == {"miniwob/click-button", "miniwob/focus-text"}
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events].count("final") >= 4  # one per episode, plus the run's own
    res = CliRunner().invoke(app, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 4  # nothing ran twice


def test_replay_of_a_logged_run_reproduces_it(tmp_path):
    first = evaluate(EvalConfig(suite="apps", tasks=("inbox-L3-4",), seeds=(0, 1), policy="rule"),
                     out_dir=tmp_path / "a", progress=False)
    assert first.success_rate == 1.0
    again = evaluate(EvalConfig(suite="apps", tasks=("inbox-L3-4",), seeds=(0, 1), policy="replay",
                                policy_kwargs=json.dumps({"trajectory": str(tmp_path / "a" / "steps.jsonl")})),
                     out_dir=tmp_path / "b", progress=False)
    assert again.success_rate == 1.0 and again.mean_steps == first.mean_steps


@pytest.mark.slow
def test_ray_spreads_episodes(tmp_path):
    pytest.importorskip("ray")
    res = evaluate(EvalConfig(suite="miniwob", tasks=("click-button", "enter-text"), seeds=(0, 1), policy="rule"),
                   out_dir=tmp_path / "r", progress=False, ray="local")
    assert res.episodes == 4 and res.success_rate == 1.0
