"""The report section runs end to end (at tiny sizes); every verdict is the comparison of its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsimon.attention import reproduce as rep
from parsimon.attention.training.experiment import ExperimentConfig
from parsimon.attention.training.model import DiTConfig
from parsimon.report.section import ReproContext, Section


def _claim(sec, words):
    return next(c for c in sec.claims if words in c.text)


def test_reproduce_tiny(tmp_path, monkeypatch):
    tiny = ExperimentConfig(clips=16, eval_clips=4, model=DiTConfig(frames=4, size=16, dim=16, depth=1, heads=2),
                            teacher_steps=4, tune_steps=2, batch_size=4, sample_n=2, sample_steps=2,
                            topk=0.13, block_q=16, block_k=8, target_sparsity=0.75)
    monkeypatch.setattr(rep, "_settings", lambda ctx: (512, tiny))
    sec = rep.reproduce(ReproContext(out_dir=tmp_path))
    assert isinstance(sec, Section) and sec.name == "attention"
    titles = [t.title for t in sec.tables]
    assert titles[0].startswith("Table 1 analogue") and titles[1].startswith("Table 1 analogue at other")
    assert titles[2].startswith("Distillation")
    assert [r[0] for r in sec.tables[2].rows] == ["teacher (dense)", "training-free", "diffusion-ft", "velocity-distill",
                                                 "topk-only, training-free", "topk-only, distill",
                                                 "topp-only, training-free", "topp-only, distill"]
    assert all(f.path.is_file() for f in sec.figures)
    raw = json.loads((tmp_path / "attention_distill.json").read_text())
    assert raw["config"]["teacher_steps"] == 4
    arms = {a["arm"]: a for a in raw["arms"]}
    vd, ft, tf = arms["velocity-distill"], arms["diffusion-ft"], arms["training-free"]
    # each verdict is the comparison of the raw numbers it reports
    assert _claim(sec, "beats fine-tuning").reproduced is (
        vd["rel_velocity_err"] < ft["rel_velocity_err"] and vd["sample_psnr_db"] > ft["sample_psnr_db"])
    assert f"{vd['rel_velocity_err']:.4f} vs {ft['rel_velocity_err']:.4f}" in _claim(sec, "beats fine-tuning").ours
    assert _claim(sec, "recovers quality").reproduced is (vd["rel_velocity_err"] < tf["rel_velocity_err"])
    tk, tp = arms["topk-only, distill"], arms["topp-only, distill"]
    assert _claim(sec, "union mask trains better").reproduced is (
        vd["rel_velocity_err"] <= min(tk["rel_velocity_err"], tp["rel_velocity_err"]))
    conc = raw["concentration_60"]
    assert _claim(sec, "more concentrated").reproduced is (conc["velocity-distill"] > conc["teacher (dense)"])
    assert _claim(sec, "16.2").reproduced is None  # speed is not measured in this run
    # the realised sparsity of every sparse arm is near the calibrated target
    for name in ("training-free", "velocity-distill"):
        assert abs(arms[name]["calibrated_sparsity"] - 0.75) < 0.1, name
    # the teacher is cached: a second run loads it instead of training again
    assert (tmp_path / "attention_distill" / "teacher.pt").is_file()


def test_union_claim_follows_the_table_numbers(tmp_path, monkeypatch):
    """The Table 1 verdict: the union within 5% of the better single rule, on both row kinds."""
    def table(kind, **kw):
        rel = {"uniform": (0.40, 0.37, 0.371), "skewed": (0.16, 0.21, 0.20)}[kind]
        return {"arms": {a: {"rel_l1": r, "sparsity": 0.9, "retained_mass": 0.5} for a, r in
                         zip(("topk", "topp", "union"), rel, strict=True)}}

    import parsimon.attention.training.operator_study as study

    monkeypatch.setattr(study, "equal_sparsity_table", table)
    tiny = ExperimentConfig(clips=8, eval_clips=2, model=DiTConfig(frames=4, size=16, dim=16, depth=1, heads=2),
                            teacher_steps=1, tune_steps=1, batch_size=2, sample_n=1, sample_steps=1, ablations=False,
                            topk=0.13, block_q=16, block_k=8, target_sparsity=0.75)
    monkeypatch.setattr(rep, "_settings", lambda ctx: (512, tiny))
    sec = rep.reproduce(ReproContext(out_dir=tmp_path))
    # uniform: 0.371 <= 1.05 * 0.37; skewed: 0.20 > 1.05 * 0.16 -> not reproduced
    assert _claim(sec, "union is about as good").reproduced is False


def test_speed_tables_read_benchmark_json(tmp_path):
    (tmp_path / "attention_gpu.json").write_text(json.dumps({
        "device": "NVIDIA H100", "shape": "B1 H12 N32760", "env": {"time_utc": "2026-01-01T00:00:00Z", "argv": ["--gpu"]},
        "forward": {"ours triton": {"median_s": 0.001}, "cudnn dense": {"median_s": 0.0114}},
    }))
    (tmp_path / "attention_distill_quick.json").write_text(json.dumps({"x": {"median_s": 1.0}}))
    tables, meta = rep.speed_tables(tmp_path)
    assert len(tables) == 1 and meta[0]["where"] == "NVIDIA H100"
    assert ["forward / ours triton", "1.000"] in tables[0].rows
    assert "not re-measured" in tables[0].note


def test_speed_tables_come_from_package_data_not_the_checkout():
    """Issue 9: the library must not read benchmarks/results (an installed wheel has none)."""
    from importlib import resources

    shipped = json.loads(resources.files("parsimon.attention").joinpath("speed_results.json").read_text())["files"]
    tables, meta = rep.speed_tables()
    assert [m["file"] for m in meta] == sorted(shipped)
    cpu = shipped["attention_cpu.json"]
    timings = dict(rep._timings(cpu))
    rows = dict(next(t for t in tables if "attention_cpu.json" in t.title).rows)
    assert rows == {k: f"{v * 1e3:.3f}" for k, v in timings.items()}
    # the shipped copy is the committed benchmark result (``attention_bench.py --save`` writes both)
    committed = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "attention_cpu.json"
    if not committed.is_file():
        pytest.skip("no source checkout")
    assert json.loads(committed.read_text()) == cpu
