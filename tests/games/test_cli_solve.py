"""``parsimon games solve / compile / bench``."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parsimon.games.cli import _split_games, app

runner = CliRunner()


def test_solve_writes_curve_json_and_png(tmp_path):
    res = runner.invoke(app, ["solve", "kuhn_poker(players=3)", "--algo", "pcfr+", "--iterations", "50",
                              "--eval-every", "10", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    js = list(tmp_path.glob("*.json"))
    assert len(js) == 1 and list(tmp_path.glob("*.png"))
    data = json.loads(js[0].read_text())
    assert data["algo"] == "pcfr+" and [p[0] for p in data["exploitability"]] == [10, 20, 30, 40, 50]
    assert "exploitability" in res.output


def test_compile_prints_summary():
    res = runner.invoke(app, ["compile", "kuhn_poker"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["infosets"] == 12


def test_bench_runs():
    res = runner.invoke(app, ["bench", "--games", "kuhn_poker", "--iterations", "3"])
    assert res.exit_code == 0, res.output
    assert "ms/it" in res.output and "OpenSpiel C++" in res.output


def test_errors_are_clean():
    res = runner.invoke(app, ["solve", "no_such_game"])
    assert res.exit_code != 0 and "unknown OpenSpiel game" in res.output
    res = runner.invoke(app, ["solve", "kuhn_poker", "--algo", "foo"])
    assert res.exit_code != 0 and "unknown algorithm" in res.output


def test_split_games():
    assert _split_games("kuhn_poker,leduc_poker(players=3),liars_dice(dice_sides=5,numdice=1)") == [
        "kuhn_poker", "leduc_poker(players=3)", "liars_dice(dice_sides=5,numdice=1)"]
