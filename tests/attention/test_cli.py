"""``parsimon attention`` commands: mask-stats, distill (with --resume), bench, and argument errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parsimon.attention.cli import COMMANDS, app

runner = CliRunner()


def test_registered_group():
    assert COMMANDS == {"attention": app}


def test_mask_stats_json_matches_the_library():
    import torch

    from parsimon.attention import hybrid_block_mask
    from parsimon.attention.training.operator_study import make_rows

    r = runner.invoke(app, ["mask-stats", "--n", "512", "--heads", "2", "--block-q", "64", "--block-k", "32",
                            "--topk", "0.1", "--topp", "0.5", "--rows", "uniform", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    q, k, _ = make_rows("uniform", h=2, n=512, d=64, block_k=32, seed=0)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.5, block_q=64, block_k=32)
    assert out["sparsity"] == pytest.approx(lay.sparsity)
    assert out["blocks"] == [8, 16] and 0 < out["rel_l1_vs_dense"] < 2
    assert out["retained_mass"]["mean"] == pytest.approx(float(lay.retained_mass.mean()), rel=1e-5)
    assert torch.is_tensor(lay.kv_counts)


@pytest.mark.parametrize("args, hint", [
    (["mask-stats", "--mode", "both"], "--mode"),
    (["mask-stats", "--topk", "1.5"], "--topk"),
    (["mask-stats", "--rows", "weird"], "--rows"),
    (["distill", "--objective", "x"], "--objective"),
    (["bench", "--device", "tpu"], "--device"),
])
def test_bad_options_name_the_option(args, hint):
    r = runner.invoke(app, args)
    assert r.exit_code != 0
    assert hint in r.output


def test_distill_and_resume(tmp_path):
    base = ["distill", "--out", str(tmp_path), "--teacher-steps", "3", "--clips", "16", "--dim", "16", "--depth", "1",
            "--heads", "2", "--batch-size", "4", "--topk", "0.1", "--topp", "0.2", "--backend", "torch",
            "--ckpt-every", "2"]
    r = runner.invoke(app, [*base, "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "eval.json").read_text())["steps"] == 2
    r = runner.invoke(app, [*base, "--steps", "4", "--resume"])
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["steps"] == 4 and 0 < ev["sparsity"] < 1 and ev["rel_velocity_err"] >= 0
    assert (tmp_path / "teacher.pt").is_file() and (tmp_path / "student.pt").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["topk"] == 0.1


def test_distill_calibrates_to_target_sparsity(tmp_path):
    r = runner.invoke(app, ["distill", "--out", str(tmp_path), "--teacher-steps", "3", "--clips", "16", "--dim", "16",
                            "--depth", "1", "--heads", "2", "--batch-size", "4", "--steps", "1", "--topk", "0.125",
                            "--sparsity", "0.75", "--backend", "torch"])
    assert r.exit_code == 0, r.output
    cal = json.loads((tmp_path / "config.json").read_text())["calibrated"]
    assert abs(cal["sparsity"] - 0.75) < 0.06
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert abs(ev["sparsity"] - 0.75) < 0.15  # measured on the student after a step, on its own q/k
    r = runner.invoke(app, ["distill", "--out", str(tmp_path), "--sparsity", "1.5"])
    assert r.exit_code != 0 and "--sparsity" in r.output


def test_bench_quick():
    r = runner.invoke(app, ["bench", "--n", "512", "--heads", "2", "--block-q", "64", "--block-k", "32",
                            "--topk", "0.1", "--topp", "0.2", "--repeats", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["dense_ms"] > 0 and out["sparse_incl_mask_ms"] > 0 and 0 < out["sparsity"] < 1
