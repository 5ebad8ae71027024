"""Issue 16: the benchmark scripts write to a run folder by default; the committed benchmarks/results/ files
only with --save; `games_bench.py --quick` never overwrites the full run's file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture
def games_bench(tmp_path, monkeypatch):
    mod = _load("games_bench")
    outputs = sys.modules["_outputs"]
    monkeypatch.setattr(outputs, "RESULTS", tmp_path / "results")  # stands in for benchmarks/results

    def fake_row(name, gstr, *a, **k):  # the timing itself is not under test here
        return {"game": name, "game_string": gstr, "ours_numpy_s": 1e-3, "openspiel_cpp_s": 2e-3,
                "openspiel_python_s": 1e-2}

    monkeypatch.setattr(mod, "bench_game", fake_row)
    return mod


def test_default_output_is_a_run_folder(games_bench, tmp_path):
    assert games_bench.main(["--quick", "--out", str(tmp_path / "run")]) == 0
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["config"]["quick"] is True
    rows = json.loads((run / "games_bench_quick.json").read_text())["rows"]
    assert [r["game"] for r in rows] == [g for g, *_ in games_bench.GAMES if g in games_bench.QUICK]
    assert (run / "games_bench_quick.png").stat().st_size > 0
    assert not (tmp_path / "results").exists()  # nothing committed without --save


def test_save_writes_results_and_quick_keeps_its_own_name(games_bench, tmp_path):
    results = tmp_path / "results"
    assert games_bench.main(["--save", "--out", str(tmp_path / "full")]) == 0
    full = (results / "games_bench.json").read_text()
    assert len(json.loads(full)["rows"]) == len(games_bench.GAMES)
    assert games_bench.main(["--save", "--quick", "--out", str(tmp_path / "quick")]) == 0
    assert (results / "games_bench.json").read_text() == full  # the full run's file is untouched
    assert len(json.loads((results / "games_bench_quick.json").read_text())["rows"]) == len(games_bench.QUICK)
