"""Task files given to ``cta eval``: a corrupt, empty or binary file is one line of error and exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.errors import ConfigError

runner = CliRunner()

BAD_FILES = {
    "empty.jsonl": b"",
    "blank.jsonl": b"\n  \n\n",
    "binary.json": bytes(range(256)) * 4,
    "truncated.json": b'[{"env": {"labels": ["A"',
    "torn-line.jsonl": b'{"labels": ["A", "B"], "priors": [0.5, 0.5], "gamma": 0.5, "prize": "A"}\n{"lab',
    "not-a-list.json": b"42",
    "list-of-numbers.json": b"[1, 2, 3]",
    "wrong-fields.jsonl": b'{"a": 1}\n',
    "empty-list.json": b"[]",
}


@pytest.fixture
def bad_files(tmp_path):
    out = {}
    for name, data in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    return out


@pytest.mark.parametrize("env", ["pandora", "qa", "filereading"])
def test_cli_rejects_bad_task_files_in_one_line(env, bad_files, tmp_path):
    for name, path in bad_files.items():
        r = runner.invoke(app, ["cta", "eval", "--env", env, "--policy", "oracle", "--tasks", str(path),
                                "--out", str(tmp_path / f"out-{env}-{name}")])
        assert r.exit_code == 2, (env, name, r.output, r.exception)
        assert "Traceback" not in r.output, (env, name, r.output)
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (env, name, r.output)
        assert path.name in lines[0], (env, name, r.output)  # the message names the file


@pytest.mark.parametrize("env", ["pandora", "qa", "filereading"])
def test_loaders_raise_config_error(env, bad_files):
    from parsimon.cta.registry import get_env

    spec = get_env(env)
    for path in bad_files.values():
        with pytest.raises(ConfigError, match=path.name.replace(".", r"\.")):
            spec.load(path)


def test_good_files_still_load(tmp_path):
    from parsimon.cta.pandora import generate_tasks, load_tasks, save_tasks

    tasks = generate_tasks(3, seed=1)
    jsonl = save_tasks(tasks, tmp_path / "t.jsonl")
    assert [t.task_id for t in load_tasks(jsonl)] == [t.task_id for t in tasks]
    released = [{"task_id": f"r{i}", "env": {"labels": t.labels, "priors": t.priors, "true_arm": t.prize},
                 "discount_factor": t.gamma} for i, t in enumerate(tasks)]
    (tmp_path / "r.json").write_text(json.dumps(released))
    assert [t.prize for t in load_tasks(tmp_path / "r.json")] == [t.prize for t in tasks]
