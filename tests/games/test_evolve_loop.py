"""The evolution loop: offline runs keep or improve the best fitness, resume continues exactly, database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parsimon.errors import ConfigError
from parsimon.games.evolve import EvolveConfig, ProgramDatabase, evolve

GAMES = ["kuhn_poker(players=3)", "kuhn_poker"]


def _cfg(**kw):
    base = dict(games=GAMES, generations=3, islands=2, iterations=30, time_s=60, memory_mb=512, migrate_every=2)
    base.update(kw)
    return EvolveConfig(**base)


def test_offline_run_keeps_or_improves_best(tmp_path):
    from parsimon.governance import get_ledger

    res = evolve(_cfg(), out_dir=tmp_path)
    means = [h["best_mean"] for h in res.history]
    assert means[0] == pytest.approx(res.seed_mean)
    assert all(b >= a for a, b in zip(means, means[1:], strict=False))  # elitist: the best never gets worse
    assert res.best_mean >= res.seed_mean
    assert len(res.lineage) == 3 * 2
    assert {r["status"] for r in res.lineage} <= {"ok", "rejected", "error", "timeout", "memory", "mutation_failed"}
    lines = (tmp_path / "lineage.jsonl").read_text().splitlines()
    assert [json.loads(x)["generation"] for x in lines] == [r["generation"] for r in res.lineage]
    assert (tmp_path / "best.py").read_text().count("class ") == 3
    ev = {r["component"]: r for r in get_ledger().totals("component")}["games.evolve.eval"]
    assert ev["actions"] == 1 + sum(r["status"] != "mutation_failed" for r in res.lineage)


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    full = evolve(_cfg(generations=4), out_dir=tmp_path / "a")
    evolve(_cfg(generations=2), out_dir=tmp_path / "b")
    resumed = evolve(_cfg(generations=4), out_dir=tmp_path / "b", resume=True)
    key = lambda r: (r["generation"], r["island"], r["parent"], r["description"], r["status"])  # noqa: E731
    assert [key(r) for r in resumed.lineage] == [key(r) for r in full.lineage]
    assert resumed.best_fitness == full.best_fitness
    with pytest.raises(ConfigError, match="exists"):
        evolve(_cfg(generations=4), out_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="another run"):
        evolve(_cfg(generations=5, iterations=31), out_dir=tmp_path / "b", resume=True)


def test_database_sampling_islands_and_capacity():
    db = ProgramDatabase(["g1", "g2"], islands=2, island_capacity=3)
    db.add("seed", {"g1": -1.0, "g2": -1.0}, island=0)
    db.add("good_g1", {"g1": -0.1, "g2": -2.0}, island=0)
    db.add("good_mean", {"g1": -0.5, "g2": -0.5}, island=0)
    db.add("bad", {"g1": -3.0, "g2": -3.0}, island=0)  # over capacity: the worst unprotected leaves
    names = {p.source for p in db.members(0)}
    assert names == {"seed", "good_g1", "good_mean"}
    rng = np.random.default_rng(0)
    draws = [db.sample_parent(0, rng) for _ in range(300)]
    assert {m for _, m in draws} == {"g1", "g2", "mean"}
    firsts = sum(p.source == db.ranked(0, m)[0].source for p, m in draws)
    assert firsts > 300 / 3  # rank-weighted toward the best of the drawn metric
    assert db.migrate() == 1 and db.best().source == "good_mean"
    assert {p.source for p in db.members(1)} == {"good_mean"}
    again = ProgramDatabase.from_json(json.loads(json.dumps(db.to_json())))
    assert again.to_json() == db.to_json()


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="`program` must be one of"):
        evolve(_cfg(program="nope"), out_dir=tmp_path)
    with pytest.raises(ConfigError, match="generations"):
        EvolveConfig(generations=-1)


def test_ray_flag_needs_ray():
    import importlib.util

    from parsimon.errors import DependencyNotInstalled
    from parsimon.games.evolve import Evaluator

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed here")
    with pytest.raises(DependencyNotInstalled, match="ray"):
        Evaluator(["kuhn_poker"], use_ray=True)


def test_evolve_cli_resumes_an_interrupted_run_exactly(tmp_path, monkeypatch):
    """`games evolve` is a run: interrupted after generation 1, `--resume` gives the uninterrupted run's
    lineage; a resume with other settings is refused and names the field."""
    import importlib

    from typer.testing import CliRunner

    from parsimon.cli import app

    loop = importlib.import_module("parsimon.games.evolve.loop")
    args = ["games", "evolve", "--program", "cfr_plus", "--games", "kuhn_poker,kuhn_poker(players=3)",
            "--generations", "2", "--offline", "-n", "20", "--seed", "3", "--json"]
    full = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    real_save = loop._save

    def save_then_stop(store, out, config, db, gen, *rest):
        real_save(store, out, config, db, gen, *rest)
        if gen == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save", save_then_stop)
    cut = tmp_path / "cut"
    r = CliRunner().invoke(app, [*args, "--out", str(cut)])
    assert r.exit_code != 0
    assert json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    assert len((cut / "lineage.jsonl").read_text().splitlines()) == 2  # generation 1 only
    monkeypatch.setattr(loop, "_save", real_save)
    again = CliRunner().invoke(app, [*args, "--out", str(cut), "--resume"])
    assert again.exit_code == 0, again.output
    a, b = json.loads(full.stdout), json.loads(again.stdout)
    assert a["children"] == b["children"] == 4 and a["best_fitness"] == b["best_fitness"]

    def lineage(d):
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in
                (d / "lineage.jsonl").read_text().splitlines()]

    assert lineage(cut) == lineage(tmp_path / "full")
    assert json.loads((cut / "config.json").read_text())["seed"] == 3
    # the evaluations' ledger charges carry the run id, next to the run's own wall time
    from parsimon.governance import get_ledger

    run_id = json.loads((cut / "config.json").read_text())["run_id"]
    spent = {r["component"]: r for r in get_ledger().totals("component", run=run_id)}
    assert spent["games.evolve.eval"]["actions"] == 1 + 4  # the starting program, then 2 + 2 children
    assert spent["games evolve"]["wall_s"] > 0
    bad = CliRunner().invoke(app, [*args[:-1], "--generations", "3", "--out", str(cut), "--resume"])
    assert bad.exit_code == 2 and "generations: 2 -> 3" in bad.output
    text = CliRunner().invoke(app, [*args[:-1], "--generations", "1", "--out", str(tmp_path / "t")])
    assert text.exit_code == 0 and "valid_children: " in text.stdout
