"""The evolution loop's Ray evaluator gives the same run as in-process evaluation (skipped without Ray)."""

from __future__ import annotations

import pytest

from parsimon.games.evolve import EvolveConfig, evolve

pytestmark = pytest.mark.slow


def test_ray_evolve_matches_in_process(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local instance, not someone's cluster
    kw = dict(games=["kuhn_poker(players=3)", "kuhn_poker"], generations=2, islands=2, children_per_island=2,
              iterations=20, time_s=60, memory_mb=512, workers=2)
    local = evolve(EvolveConfig(**kw), out_dir=tmp_path / "local")
    try:
        remote = evolve(EvolveConfig(**kw, use_ray=True, ray_address="local"), out_dir=tmp_path / "ray")  # --ray local
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    strip = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    assert len(remote.lineage) == 2 * 2 * 2
    assert sum(r["status"] == "ok" for r in remote.lineage) >= 1
    assert strip(remote.lineage) == strip(local.lineage)  # same children, statuses and exact fitness
    assert remote.history == local.history
    assert remote.best_source == local.best_source and remote.best_fitness == local.best_fitness
