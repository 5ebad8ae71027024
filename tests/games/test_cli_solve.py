"""``parsimon games solve / compile / bench / psro``: run folders, output kinds, and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.games.cliopts import split_games

runner = CliRunner()


def games(*args):
    return runner.invoke(app, ["games", *args])


def test_solve_writes_a_run_folder(tmp_path):
    out = tmp_path / "run"
    res = games("solve", "kuhn_poker(players=3)", "--algo", "pcfr+", "--iterations", "50", "--eval-every", "10",
                "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    data = json.loads((out / "result.json").read_text())
    assert data["algo"] == "pcfr+" and [p[0] for p in data["exploitability"]] == [10, 20, 30, 40, 50]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["name"] == "games solve" and cfg["config"]["algo"] == "pcfr+" and cfg["config"]["iterations"] == 50
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_exploitability"] == data["exploitability"][-1][1] == printed["final_exploitability"]
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["type"] == "scalars"] == [10, 20, 30, 40, 50]
    assert (out / "figures" / "exploitability.png").stat().st_size > 0
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    # the run's wall time is in the ledger under its id
    from parsimon.governance import get_ledger

    spent = get_ledger().totals("run", run=cfg["run_id"])
    assert spent and spent[0]["wall_s"] > 0


def test_solve_prints_text_by_default(tmp_path):
    res = games("solve", "kuhn_poker", "-n", "10", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert "final_exploitability: " in res.output and "{" not in res.output


def test_solve_checks_the_out_folder_before_solving(tmp_path, monkeypatch):
    """Issue 10: `games solve kuhn_poker -n 2 --out /proc/forbidden` solved, then failed and lost the result."""
    import importlib

    solve_mod = importlib.import_module("parsimon.games.solve")  # the module (the package exports the function)

    def must_not_run(*a, **k):
        raise AssertionError("solved before the output folder was checked")

    monkeypatch.setattr(solve_mod, "solve", must_not_run)
    res = games("solve", "kuhn_poker", "-n", "2", "--out", "/proc/forbidden")
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
    assert "/proc/forbidden" in res.output and "Traceback" not in res.output


def test_solve_refuses_a_game_too_large_before_compiling(monkeypatch, tmp_path):
    """Issue 10: `games solve "kuhn_poker(players=10)"` ran 33 s and reached 3.9 GB before std::bad_alloc."""
    import parsimon.games.engine as engine

    def must_not_run(*a, **k):
        raise AssertionError("the game was expanded")

    monkeypatch.setattr(engine, "_traverse", must_not_run)
    res = games("solve", "kuhn_poker(players=10)", "-n", "2", "--out", str(tmp_path / "big"))
    assert res.exit_code == 2, res.output
    assert "max_nodes=3,000,000" in res.output and "--max-nodes" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = games("compile", "leduc_poker", "--no-cache", "--max-nodes", "1000")
    assert res.exit_code == 2 and "max_nodes=1,000" in res.output


def test_compile_prints_summary():
    res = games("compile", "kuhn_poker", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["infosets"] == 12
    text = games("compile", "kuhn_poker")
    assert "infosets: 12" in text.output


def test_bench_runs():
    res = games("bench", "--games", "kuhn_poker", "--iterations", "3", "--json")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["kuhn_poker"]
    assert row["ours_ms_per_iteration"] > 0 and row["openspiel_cpp_ms_per_iteration"] > 0


def test_psro_writes_a_run_folder(tmp_path):
    out = tmp_path / "p"
    res = games("psro", "kuhn_poker", "--train-solver", "nash", "--eval-solver", "nash", "-n", "4", "--out",
                str(out), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads((out / "result.json").read_text())
    assert [k for k, _ in data["exploitability"]] == [1, 2, 3, 4] and data["population_sizes"] == [5, 5]
    assert json.loads(res.stdout)["final_exploitability"] == data["exploitability"][-1][1]
    assert (out / "figures" / "exploitability.png").is_file()


@pytest.mark.parametrize("args, needle", [
    (["solve", "no_such_game"], "unknown OpenSpiel game"),
    (["solve", "kuhn_poker", "--algo", "foo"], "'foo' is not one of"),
    (["solve", "kuhn_poker", "--backend", "jax"], "'jax' is not one of"),
    (["psro", "kuhn_poker", "--train-solver", "bogus"], "'bogus' is not one of"),
    (["evolve", "--program", "nope", "--offline"], "`program` must be one of"),
    (["evolve", "--rng-seed", "3", "--offline"], "`--rng-seed` was renamed `--seed`"),
])
def test_errors_are_clean(args, needle, tmp_path):
    res = games(*args, "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and needle in res.output, res.output
    assert "Traceback" not in res.output


def test_algo_choices_are_listed_in_help():
    res = games("solve", "--help")
    assert "cfr+" in res.output and "vad-cfr" in res.output and "numpy" in res.output


def test_split_games():
    assert split_games("kuhn_poker,leduc_poker(players=3),liars_dice(dice_sides=5,numdice=1)") == [
        "kuhn_poker", "leduc_poker(players=3)", "liars_dice(dice_sides=5,numdice=1)"]
    assert split_games(" kuhn_poker, ,") == ["kuhn_poker"]


def test_every_option_has_a_help_text():
    import typer.main

    from parsimon.games.cli import app as games_app

    group = typer.main.get_group(games_app)
    for name, cmd in group.commands.items():
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                assert p.help, (name, p.name)
