"""Issue 16: benchmarks/attention_bench.py writes to a run folder by default; benchmarks/results/ and the
package's copy of the speed results only with --save."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("_bench_attention", BENCH / "attention_bench.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_outputs_go_to_the_run_folder_unless_saved(tmp_path, monkeypatch):
    bench = _load()
    monkeypatch.setattr(sys.modules["_outputs"], "RESULTS", tmp_path / "results")
    monkeypatch.setattr(bench, "PACKAGED", tmp_path / "speed_results.json")
    monkeypatch.setattr(bench, "run_cpu", lambda args: {"part": "cpu", "forward": {"x": {"median_s": 0.5}}})
    monkeypatch.setattr(bench, "plot", lambda result, path: Path(path).write_bytes(b"png"))
    assert bench.main(["--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "attention_cpu.json").read_text())["forward"]["x"]["median_s"] == 0.5
    assert not (tmp_path / "results").exists() and not (tmp_path / "speed_results.json").exists()
    assert bench.main(["--quick", "--save", "--out", str(tmp_path / "q")]) == 0
    assert (tmp_path / "results" / "attention_cpu_quick.json").is_file()
    assert not (tmp_path / "speed_results.json").exists()  # a quick run is not shipped
    assert bench.main(["--save", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "results" / "attention_cpu.json").is_file()
    shipped = json.loads((tmp_path / "speed_results.json").read_text())["files"]
    assert shipped["attention_cpu.json"]["forward"]["x"]["median_s"] == 0.5
