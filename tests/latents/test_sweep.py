"""The c_lf sweep: points, aggregation over seeds, resume, and the same sweep over Ray."""

from __future__ import annotations

import json
import math

import pytest

from parsimon.errors import ConfigError
from parsimon.latents.experiment import quick_config
from parsimon.latents.sweep import aggregate, run_sweep, sweep_points


def _tiny():
    return quick_config(ul={"encoder_hidden": 16, "prior_hidden": 16, "prior_depth": 1, "decoder_hidden": 16,
                            "decoder_depth": 1, "rate_warmup": 0},
                        base={"hidden": 16, "depth": 1}, stage1={"steps": 2, "batch_size": 8, "warmup": 1},
                        stage2={"steps": 2, "batch_size": 8, "warmup": 1},
                        eval={"n_samples": 8, "t_samples": 2, "decoder_steps": 2, "latent_steps": 2})


def test_aggregate_by_hand():
    pts = [{"loss_factor": 1.5, "bits_per_pixel": 0.1}, {"loss_factor": 1.5, "bits_per_pixel": 0.3},
           {"loss_factor": 1.3, "bits_per_pixel": 0.05}]
    rows = aggregate(pts, metrics=("bits_per_pixel",))
    assert [r["loss_factor"] for r in rows] == [1.3, 1.5]
    assert rows[1]["bits_per_pixel"] == pytest.approx(0.2)
    assert rows[1]["bits_per_pixel_sd"] == pytest.approx(math.sqrt(0.02))
    assert rows[1]["bits_per_pixel_se"] == pytest.approx(0.1)
    assert math.isnan(rows[0]["bits_per_pixel_se"])


def test_points_are_checked():
    assert sweep_points([1.3, 2.1], [0, 1]) == [(1.3, 0), (1.3, 1), (2.1, 0), (2.1, 1)]
    with pytest.raises(ConfigError, match="loss-factors"):
        sweep_points([-1.0], [0])
    with pytest.raises(ConfigError, match="seeds"):
        sweep_points([1.5], [])


@pytest.mark.slow
def test_sweep_in_process_and_resume(tmp_path):
    res = run_sweep(_tiny(), [1.3, 1.7], [0], out_dir=tmp_path / "s", progress=False)
    assert [r["loss_factor"] for r in res["rows"]] == [1.3, 1.7]
    saved = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(saved["points"]) == 2 and (tmp_path / "s" / "figures" / "sweep.png").is_file()
    # resume: finished points are read back, not trained again
    again = run_sweep(_tiny(), [1.3, 1.7], [0], out_dir=tmp_path / "s", resume=True, progress=False)
    assert [p["bits_per_pixel"] for p in again["points"]] == [p["bits_per_pixel"] for p in res["points"]]


@pytest.mark.slow
def test_sweep_over_ray_matches_in_process(tmp_path):
    pytest.importorskip("ray")
    import ray

    local = run_sweep(_tiny(), [1.5], [0], out_dir=tmp_path / "local", progress=False)
    try:
        remote = run_sweep(_tiny(), [1.5], [0], out_dir=tmp_path / "ray", ray_address="local", progress=False)
    finally:
        ray.shutdown()
    assert remote["points"][0]["bits_per_pixel"] == local["points"][0]["bits_per_pixel"]
