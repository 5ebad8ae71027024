"""The latents report section runs end to end on tiny settings and fills its tables, figures and claims."""

from __future__ import annotations

import json

import pytest

import parsimon.latents.reproduce as R
from parsimon.report.section import ReproContext, Section

TINY = {
    "seeds": (0, 1),
    "ul": {"decoder_hidden": 32, "prior_hidden": 32, "encoder_hidden": 32, "decoder_depth": 1, "prior_depth": 1},
    "stage1": {"steps": 4, "batch_size": 16, "warmup": 1, "ckpt_every": 0, "log_every": 2},
    "stage2": {"steps": 4, "batch_size": 16, "warmup": 1, "ckpt_every": 0, "log_every": 2},
    "base": {"hidden": 32, "depth": 1},
    "klae": {"channels": (8, 8)},
    "eval": {"n_samples": 12, "t_samples": 2, "decoder_steps": 2, "latent_steps": 2},
    "fd_at": (2, 4),
    "ablations": ("B", "D"),
}


@pytest.mark.slow
def test_reproduce_tiny(tmp_path, monkeypatch):
    monkeypatch.setitem(R.SETTINGS, "quick", TINY)
    monkeypatch.setattr(R, "LOSS_FACTORS", (1.3, 1.5))
    sec = R.reproduce(ReproContext(out_dir=tmp_path, full=False))
    assert isinstance(sec, Section) and not sec.error
    titles = [t.title for t in sec.tables]
    assert any("Table 2" in t for t in titles) and any("Fig. 4" in t for t in titles)
    assert any("Ablations" in t for t in titles)
    sweep = sec.tables[0]
    assert [r[0] for r in sweep.rows] == [1.3, 1.5] and all(r[1] == 2 for r in sweep.rows)
    assert all(f.path.exists() for f in sec.figures) and len(sec.figures) >= 5
    texts = [c.text for c in sec.claims]
    assert any("c_lf" in t for t in texts) and any("λ_z(0) = 10" in t for t in texts)
    assert any("learned encoder variance" in t for t in texts) and any("equal training FLOPs" in t for t in texts)
    raw = json.loads((tmp_path / "latents_reproduce.json").read_text())
    assert len(raw["sweep"]["points"]) == 4
    assert [p[0] for p in raw["flops"]["ul"]["curve"]] == [2, 4]
    assert raw["flops"]["pixel"]["curve"]  # the equal-FLOPs steps of the pixel model (they may coincide when tiny)
    # a second call reads the finished runs back instead of training again
    again = R.reproduce(ReproContext(out_dir=tmp_path, full=False))
    assert again.tables[0].rows == sweep.rows
