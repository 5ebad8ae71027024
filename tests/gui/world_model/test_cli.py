"""`parsimon gui wm` and the search options of `gui eval`: help, and one-line errors (exit 2) without a browser."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.gui.world_model.cli import search_settings


def test_wm_commands_have_help():
    for cmd in ("collect", "train", "eval"):
        r = CliRunner().invoke(app, ["gui", "wm", cmd, "--help"])
        assert r.exit_code == 0 and "--" in r.output, r.output
    r = CliRunner().invoke(app, ["gui", "eval", "--help"])
    assert all(opt in r.output for opt in ("--world-model", "--search-k", "--search-mode", "--search-scorer"))


def test_train_and_eval_on_an_empty_store_fail_in_one_line(tmp_path):
    r = CliRunner().invoke(app, ["gui", "wm", "train", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and r.output.strip().startswith("error:") and "no transitions" in r.output
    r = CliRunner().invoke(app, ["gui", "wm", "train", "--store", str(tmp_path), "--searched", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "t2")])
    assert r.exit_code == 2 and "--searched" in r.output and "no such folder" in r.output
    r = CliRunner().invoke(app, ["gui", "wm", "eval", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "e"),
                                 "--render-samples", "0", "--curve", ""])
    assert r.exit_code == 2 and "collect more" in r.output
    r = CliRunner().invoke(app, ["gui", "wm", "eval", "--models", "rule,oracle", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "oracle_samples" in r.output


def test_search_settings_and_their_checks():
    from parsimon.errors import ConfigError
    from parsimon.gui.world_model.search import search_config

    assert search_settings(None, 5, "text") == ""
    s = search_settings("learned", 3, "text+render", "judge", 0.2)
    assert json.loads(s) == {"world_model": "learned", "k": 3, "mode": "text+render", "scorer": "judge", "margin": 0.2}
    assert search_config(s).k == 3 and search_config(s).margin == 0.2 and search_config(s).stop == "scored"
    assert search_config(search_settings("learned", 5, "text", stop="done")).stop == "done"
    assert search_config(search_settings("learned", 5, "text", done_check=0.5)).done_check == 0.5
    assert search_config(search_settings("learned", 5, "text", done_check=0.0)).done_check == 0.0  # off
    assert "done_check" not in search_settings("learned", 5, "text")  # unset: the search's default
    assert search_config(search_settings("learned", 5, "text")).done_check is None
    for bad, word in (('{"k": 0}', "`k`"), ('{"mode": "x"}', "`mode`"), ('{"world_model": "dream"}', "world_model"),
                      ('{"depth": 2}', "unknown setting"), ("[1]", "JSON object")):
        try:
            search_config(bad)
        except ConfigError as exc:
            assert word in str(exc), (bad, exc)
        else:
            raise AssertionError(f"{bad} was accepted")
