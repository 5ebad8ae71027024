"""The games report section runs end to end (on tiny settings) and fills tables, figures and claims."""

from __future__ import annotations

import json

import parsimon.games.reproduce as R
from parsimon.report.section import ReproContext, Section


def test_reproduce_small(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "TRAIN_GAMES", {"Kuhn 3p": "kuhn_poker"})  # small stand-ins keep the test fast
    monkeypatch.setattr(R, "TEST_GAMES", {"Kuhn 4p": "kuhn_poker", "Leduc 3p": "kuhn_poker"})
    monkeypatch.setattr(R, "QUICK_ITERS", {"Kuhn 3p": 1000, "Kuhn 4p": 30, "Leduc 3p": 30})
    monkeypatch.setattr(R, "_psro_runs", lambda full: [
        ("Kuhn 2p", "kuhn_poker", "nash", "nash", 8, {}),
        ("Kuhn 2p", "kuhn_poker", "rm", "rm", 3, {"iterations": 200}),
        ("Kuhn 3p", "kuhn_poker(players=3)", "shor", "shor-eval", 2, {}),
    ])
    monkeypatch.setattr(R, "EVOLVE_GAMES", ["kuhn_poker"])
    monkeypatch.setattr(R, "EVOLVE_SETTINGS", ({"generations": 1, "iterations": 20},) * 2)
    sec = R.reproduce(ReproContext(out_dir=tmp_path, full=False))
    assert isinstance(sec, Section) and not sec.error
    assert len(sec.tables) == 3 and len(sec.figures) == 2
    assert all(f.path.exists() for f in sec.figures)
    cfr_rows = {r[0]: r for r in sec.tables[0].rows}
    assert cfr_rows["Kuhn 3p"][2] == 1000 and cfr_rows["Leduc 3p"][2] == 30
    raw = json.loads((tmp_path / "games_reproduce.json").read_text())

    def claim(words):
        return next(c for c in sec.claims if words in c.text)

    # each verdict is the comparison of the numbers in the raw results
    k3, k4 = raw["cfr"]["Kuhn 3p"], raw["cfr"]["Kuhn 4p"]
    best3 = min(k3, key=lambda a: k3[a]["final"])
    assert claim("best on 3-player Kuhn").reproduced is (best3 == "vad-cfr")
    assert R._fmt(k3["vad-cfr"]["final"]) in claim("best on 3-player Kuhn").ours
    base4 = min(k4[a]["final"] for a in R.BASELINES)
    assert claim("4-player Kuhn").reproduced is (k4["vad-cfr"]["final"] > base4)
    # 30 iterations on the stand-in "Leduc 3p": the claim must not be scored
    assert raw["cfr"]["Leduc 3p"]["vad-cfr"]["iterations"] == 30 and claim("3-player Leduc").reproduced is None
    assert claim("SHOR-PSRO reaches").reproduced is None  # no PRD/RM run on Kuhn 3p to compare with
    assert any("quick mode" in n for n in sec.not_reproduced)
    nash = next(r for r in raw["psro"] if r["train"] == "nash")
    assert nash["curve"][-1][1] < 1e-9 and nash["first_below_1e-3"] is not None  # double oracle solves Kuhn 2p
    assert raw["evolve"]["best_mean"] >= raw["evolve"]["seed_mean"]  # elitist: the best never falls below the seed
    assert (tmp_path / "games_evolve_best.py").exists()
