"""`llm_agents_bench.py --combine`: each workload's rows come from the last run that measured it, with its run id."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_agents_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("_bench_llm_agents", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(workload, output, n, reward):
    return {"workload": workload, "output": output, "n": n, "decisions": n, "parse_failure_rate": 0.0,
            "invalid_action_rate": 0.0, "reward": reward, "match_rate": None, "modes": {}, "reasks": 0,
            "cut_at_max_tokens": 0, "max_tokens": 64, "tokens_per_decision": 1.0,
            "completion_tokens_per_decision": 1.0, "seconds_per_decision": 1.0}


def _run(folder: Path, run_id: str, rows, planners):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"run_id": run_id}))
    (folder / "llm_agents.json").write_text(json.dumps({"config": {"filereading": 12}, "rows": rows,
                                                        "planners": planners, "paper": {}, "seconds": 1.0}))


def test_combine_takes_each_workload_from_the_last_run(tmp_path, capsys):
    mod = _bench()
    _run(tmp_path / "a", "run-a", [_row("pandora", "free", 100, 0.1), _row("filereading", "free", 12, 0.2)],
         [{"workload": "filereading", "policy": "oracle", "reward": 0.3, "match_rate": 1.0},
          {"workload": "pandora", "policy": "oracle", "reward": 0.7, "match_rate": 1.0}])
    _run(tmp_path / "b", "run-b", [_row("filereading", "free", 50, 0.4)],
         [{"workload": "filereading", "policy": "oracle", "reward": 0.45, "match_rate": 1.0}])
    assert mod.main(["--combine", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    res = json.loads((tmp_path / "c" / "llm_agents.json").read_text())
    got = {(r["workload"], r["n"], r["run_id"]) for r in res["rows"]}
    assert got == {("pandora", 100, "run-a"), ("filereading", 50, "run-b")}
    assert sorted((p["workload"], p["reward"]) for p in res["planners"]) == [("filereading", 0.45), ("pandora", 0.7)]
    assert (tmp_path / "c" / "llm_agents.png").is_file()


def test_combine_of_a_folder_without_results_is_one_line(tmp_path, capsys):
    mod = _bench()
    assert mod.main(["--combine", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `--combine`") and "Traceback" not in err
