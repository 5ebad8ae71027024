"""The search metrics derived from a success table: lifts on shared episodes and their paired intervals."""

from __future__ import annotations

import pytest

from parsimon.gui.world_model.experiments import derived


def _row(outcomes: dict[str, int], steps: int = 5) -> dict:
    return {"outcomes": outcomes, "steps": dict.fromkeys(outcomes, steps)}


def test_derived_lifts_on_shared_episodes_with_paired_intervals():
    keys = [f"t{i}#0" for i in range(20)]
    base = {k: int(i < 6) for i, k in enumerate(keys)}  # 30%
    learned = {k: int(i < 12) for i, k in enumerate(keys)}  # 60%: never worse on an episode
    none = {k: int(i < 6 or i == 19) for i, k in enumerate(keys)}  # 35%
    oracle = {k: int(i < 8) for i, k in enumerate(keys[:10])}  # run on half the episodes
    d = derived({"proposal": _row(base), "learned text K=5": _row(learned, 4), "none K=5": _row(none),
                 "oracle text K=5": _row(oracle)}, resamples=500)
    assert d["lift_learned"] == pytest.approx(0.3) and d["steps_saved_per_episode"] == pytest.approx(1.0)
    lo, hi = d["lift_learned_ci95"]
    assert 0.0 < lo < 0.3 < hi <= 0.6  # every episode's difference is 0 or 1: the interval stays above 0
    # the oracle's ten episodes: proposal 6/10, oracle 8/10, learned 10/10
    assert d["episodes_with_oracle"] == 10 and d["lift_oracle"] == pytest.approx(0.2)
    assert d["lift_learned_on_oracle_episodes"] == pytest.approx(0.4)
    assert d["share_of_oracle_lift"] == pytest.approx(2.0) and d["regret_vs_oracle"] == pytest.approx(-0.2)
    assert d["gain_at_equal_k"] == pytest.approx(0.25)
    glo, ghi = d["gain_at_equal_k_ci95"]
    assert glo < 0.25 < ghi  # one episode goes the other way: the interval is wider than the lift's floor


def test_derived_with_no_oracle_lift_has_no_share_and_identical_rows_have_a_point_interval():
    keys = [f"t{i}#0" for i in range(8)]
    same = {k: i % 2 for i, k in enumerate(keys)}
    d = derived({"proposal": _row(same), "learned text K=5": _row(dict(same)), "oracle text K=5": _row(dict(same))})
    assert d["lift_oracle"] == 0.0 and d["share_of_oracle_lift"] is None
    assert d["lift_learned_ci95"] == [0.0, 0.0] and d["lift_oracle_ci95"] == [0.0, 0.0]
    assert "gain_at_equal_k" not in d


def test_wm_bench_rederive_rewrites_the_derived_metrics_in_place(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    keys = [f"t{i}#0" for i in range(6)]
    table = {name: {**_row({k: int(i < n) for i, k in enumerate(keys)}), "success_rate": n / 6, "ci_low": 0.0,
                    "ci_high": 1.0} for name, n in (("proposal", 2), ("learned text K=5", 4), ("learned text K=5 +done", 5),
                                                    ("learned text+render K=5 +done", 3), ("oracle text K=5 +done", 6))}
    path = tmp_path / "wm_bench.json"
    path.write_text(json.dumps({"search": {"apps": {"table": table, "derived": {}}}}))
    bench = Path(__file__).resolve().parents[3] / "benchmarks" / "wm_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--rederive", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    d = json.loads(path.read_text())["search"]["apps"]["derived"]
    assert d["lift_learned"] == pytest.approx(2 / 6) and len(d["lift_learned_ci95"]) == 2
    # the rows with the done check, against the oracle with the same check
    apps = json.loads(path.read_text())["search"]["apps"]
    for key, lift in (("derived_done_check", 3 / 6), ("derived_done_check_render", 1 / 6)):
        assert apps[key]["lift_learned"] == pytest.approx(lift) and apps[key]["lift_oracle"] == pytest.approx(4 / 6)
    assert (tmp_path / "wm_bench.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, str(bench), "--rederive", str(tmp_path / "none.json")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("wm_bench.py: error: --rederive")


@pytest.mark.parametrize("argv, message", [
    (["--eval-seeds-from", "99"], "--eval-seeds-from 99: the evaluation seeds overlap the store's (100-103)"),
    (["--store-seeds", "6", "--eval-seeds-from", "104"], "overlap the store's (100-105)"),
    (["--store-seeds-from", "-1"], "--store-seeds-from must be >= 0, got -1"),
    (["--store-seeds", "0"], "--store-seeds must be >= 1, got 0"),
])
def test_wm_bench_refuses_bad_seed_ranges_in_one_line(argv, message):
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[3] / "benchmarks" / "wm_bench.py"
    out = subprocess.run([sys.executable, str(bench), *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr.strip().splitlines()[-1]
