"""The report section runs end to end (at tiny sizes) and is honest about what it did not reproduce."""

from __future__ import annotations

import json

from parsimon.attention import reproduce as rep
from parsimon.attention.training.experiment import ExperimentConfig
from parsimon.attention.training.model import DiTConfig
from parsimon.report.section import ReproContext, Section


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
    arms = [r[0] for r in sec.tables[2].rows]
    assert arms[:4] == ["teacher (dense)", "training-free", "diffusion-ft", "velocity-distill"]
    assert "topk-only, distill" in arms and "topp-only, distill" in arms
    assert len(sec.claims) >= 5 and all(c.paper and c.ours for c in sec.claims)
    assert any("concentrated" in c.text for c in sec.claims)
    assert any("Wan2.1" in s for s in sec.not_reproduced) and any("VBench" in s for s in sec.not_reproduced)
    assert all(f.path.is_file() for f in sec.figures)
    raw = json.loads((tmp_path / "attention_distill.json").read_text())
    assert raw["config"]["teacher_steps"] == 4
    # The teacher is cached: a second run loads it instead of training again.
    assert (tmp_path / "attention_distill" / "teacher.pt").is_file()


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
