"""``parsimon attention`` commands: mask-stats, bench, distill (a run, with --resume), and argument errors."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from parsimon.attention.cli import COMMANDS, app
from parsimon.cli import app as root

runner = CliRunner()

TINY = ["--teacher-steps", "3", "--clips", "16", "--dim", "16", "--depth", "1", "--heads", "2", "--batch-size", "4",
        "--backend", "torch"]


def attention(*args):
    return runner.invoke(root, ["attention", *args], env={"COLUMNS": "200"})  # usage errors unwrapped


def test_registered_group():
    assert COMMANDS == {"attention": app}


def test_mask_stats_json_matches_the_library():
    from parsimon.attention import dense_masked_attention, hybrid_block_mask
    from parsimon.attention.training.operator_study import make_rows, relative_l1

    r = attention("mask-stats", "--seq-len", "512", "--heads", "2", "--block-q", "64", "--block-k", "32",
                  "--topk", "0.1", "--topp", "0.5", "--rows", "uniform", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    q, k, v = make_rows("uniform", h=2, n=512, d=64, block_k=32, seed=0)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.5, block_q=64, block_k=32)
    assert out["sparsity"] == pytest.approx(lay.sparsity)
    assert out["blocks"] == [8, 16]
    assert out["kept_per_row"]["max"] == int(lay.kv_counts.max())
    assert out["retained_mass"]["mean"] == pytest.approx(float(lay.retained_mass.mean()), rel=1e-5)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert out["rel_l1_vs_dense"] == pytest.approx(relative_l1(dense_masked_attention(q, k, v, lay), dense),
                                                   rel=1e-4)
    text = attention("mask-stats", "--seq-len", "512", "--heads", "2", "--rows", "random")
    assert text.exit_code == 0 and "sparsity: " in text.stdout and "{" not in text.stdout


def test_mask_stats_and_bench_share_defaults():
    """Sibling commands: the same default Top-k, Top-p and sequence length (issue 16)."""
    import typer.main

    group = typer.main.get_group(app)
    defaults = {name: {p.name: p.default for p in group.commands[name].params} for name in ("mask-stats", "bench")}
    for option in ("seq_len", "heads", "dim", "topk", "topp", "block_q", "block_k", "mode"):
        assert defaults["mask-stats"][option] == defaults["bench"][option], option
    assert (defaults["bench"]["topk"], defaults["bench"]["topp"]) == (0.03, 0.2)  # the paper's balanced tier


@pytest.mark.parametrize("args, needle", [
    (["mask-stats", "--mode", "both"], "'both' is not one of"),
    (["mask-stats", "--topk", "1.5"], "`--topk` must be a fraction"),
    (["mask-stats", "--rows", "weird"], "'weird' is not one of"),
    (["mask-stats", "--dim", "3"], "`--dim` must be even"),  # issue 10: was a traceback
    (["mask-stats", "--n", "512"], "`--n` was renamed `--seq-len`"),
    (["bench", "--backend", "nope"], "'nope' is not one of 'auto', 'dense', 'flex', 'torch', 'triton'"),
    (["bench", "--device", "tpu"], "'tpu' is not one of"),
    (["distill", "--objective", "x"], "'x' is not one of"),
    (["distill", "--sparsity", "1.5"], "`sparsity` (--sparsity) must be in (0, 1)"),
    (["distill", "--teacher", "/nonexistent/t.pt"], "no such file"),
    (["experiment", "--seeds", "1"], "`--seeds` was renamed `--seed`"),
])
def test_bad_options_are_one_line_errors(args, needle, tmp_path):
    if args[0] in ("distill", "experiment"):
        args = [*args, "--out", str(tmp_path / "run")]
    r = attention(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_every_option_has_a_help_text_and_backend_lists_its_choices():
    import typer.main

    group = typer.main.get_group(app)
    for name, cmd in group.commands.items():
        for p in cmd.params:
            if getattr(p, "hidden", False) or p.param_type_name == "argument":
                continue
            assert p.help, (name, p.name)
    r = runner.invoke(root, ["attention", "bench", "--help"], env={"COLUMNS": "200"})
    assert "<auto|dense|flex|torch|triton>" in r.output  # issue 16: --backend listed no choices


def _run_files(path):
    return (json.loads((path / "config.json").read_text()), json.loads((path / "metrics.json").read_text()),
            json.loads((path / "run.json").read_text()))


def test_distill_is_a_run_and_resumes_an_interrupted_run_exactly(tmp_path, monkeypatch):
    import importlib

    base = ["distill", *TINY, "--topk", "0.1", "--topp", "0.2", "--ckpt-every", "2", "--steps", "4"]
    full = attention(*base, "--out", str(tmp_path / "full"), "--json")
    assert full.exit_code == 0, full.output
    cfg, metrics, status = _run_files(tmp_path / "full")
    assert cfg["name"] == "attention distill" and cfg["config"]["topk"] == 0.1 and cfg["config"]["steps"] == 4
    assert status["status"] == "ok" and metrics["steps"] == 4
    assert json.loads(full.stdout)["rel_velocity_err"] == metrics["rel_velocity_err"]
    losses = [e["distill_loss"] for e in map(json.loads, (tmp_path / "full" / "events.jsonl").read_text().splitlines())
              if e.get("type") == "scalars" and "distill_loss" in e]
    assert len(losses) == 4
    # interrupt a second run after its checkpoint at step 2, then resume it
    loop = importlib.import_module("parsimon.attention.training.loop")
    real = loop.velocity_distill_loss
    calls = {"n": 0}

    def stop_at_step_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "velocity_distill_loss", stop_at_step_3)
    cut = tmp_path / "cut"
    r = attention(*base, "--out", str(cut))
    assert r.exit_code != 0 and json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(loop, "velocity_distill_loss", real)
    r = attention(*base, "--out", str(cut), "--resume", "--json")
    assert r.exit_code == 0, r.output
    a = torch.load(tmp_path / "full" / "student.pt", weights_only=False)
    b = torch.load(cut / "student.pt", weights_only=False)
    assert a["losses"] == b["losses"] and len(b["losses"]) == 4
    for name, w in a["model"].items():
        assert torch.equal(w, b["model"][name]), name
    assert (cut / "teacher.pt").is_file() and (cut / "checkpoint.pt").is_file()
    # a resume with another config is refused and names the field
    r = attention(*base[:-1], "6", "--out", str(cut), "--resume")
    assert r.exit_code == 2 and "steps: 4 -> 6" in r.output


def test_distill_calibrates_to_target_sparsity(tmp_path):
    out = tmp_path / "cal"
    r = attention("distill", *TINY, "--steps", "1", "--topk", "0.125", "--sparsity", "0.75", "--out", str(out))
    assert r.exit_code == 0, r.output
    _, metrics, _ = _run_files(out)
    assert abs(metrics["calibrated_sparsity"] - 0.75) < 0.06
    assert abs(metrics["sparsity"] - 0.75) < 0.15  # measured on the student after a step, on its own q/k
    assert metrics["topp"] == metrics["calibrated_topp"] != 0.06  # p came from the calibration, not --topp


def test_distill_config_file(tmp_path):
    cfg_file = tmp_path / "d.json"
    cfg_file.write_text(json.dumps({"steps": 1, "lr": 1e-3, "mode": "topk"}))
    r = attention("distill", *TINY, "--config", str(cfg_file), "--lr", "2e-3", "--out", str(tmp_path / "r"))
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert (saved["steps"], saved["lr"], saved["mode"]) == (1, 2e-3, "topk")  # the command line wins
    cfg_file.write_text(json.dumps({"stepz": 1}))
    r = attention("distill", "--config", str(cfg_file), "--out", str(tmp_path / "r2"))
    assert r.exit_code == 2 and "stepz" in r.output


def test_bench_quick():
    r = attention("bench", "--seq-len", "512", "--heads", "2", "--block-q", "64", "--block-k", "32", "--topk", "0.1",
                  "--repeats", "1", "--device", "cpu", "--backend", "torch", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dense_ms"] > 0 and out["sparse_incl_mask_ms"] > 0 and 0 < out["sparsity"] < 1
    assert out["speedup"] == pytest.approx(out["dense_ms"] / out["sparse_incl_mask_ms"])


def test_experiment_is_a_run_over_seeds_and_resume_skips_finished_seeds(tmp_path, monkeypatch):
    import importlib

    tiny = {"model": {"frames": 4, "size": 16, "dim": 16, "depth": 1, "heads": 2}, "clips": 8, "eval_clips": 2,
            "batch_size": 2, "sample_n": 1, "sample_steps": 1, "topk": 0.13, "target_sparsity": 0.75,
            "backend": "torch"}
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(tiny))
    args = ["experiment", "--config", str(cfg_file), "--seed", "0", "--seed", "1", "--teacher-steps", "2",
            "--tune-steps", "1", "--no-ablations", "--json"]
    full = attention(*args, "--out", str(tmp_path / "full"))
    assert full.exit_code == 0, full.output
    exp = importlib.import_module("parsimon.attention.training.experiment")
    real, seen = exp.run_distill_experiment, []

    def interrupted_on_seed_1(cfg, **kw):
        seen.append(cfg.seed)
        if cfg.seed == 1 and len(seen) == 2:
            raise KeyboardInterrupt
        return real(cfg, **kw)

    monkeypatch.setattr(exp, "run_distill_experiment", interrupted_on_seed_1)
    cut = tmp_path / "cut"
    assert attention(*args, "--out", str(cut)).exit_code != 0
    r = attention(*args, "--out", str(cut), "--resume")
    assert r.exit_code == 0, r.output
    assert seen == [0, 1, 1]  # the resumed run did not redo seed 0
    a, b = (json.loads((d / "result.json").read_text()) for d in (tmp_path / "full", cut))
    strip = lambda res: [[{k: v for k, v in arm.items() if k != "seconds"} for arm in run["arms"]]  # noqa: E731
                         for run in res["runs"]]
    assert strip(a) == strip(b) and a["seeds"] == [0, 1]
    metrics = json.loads((cut / "metrics.json").read_text())
    assert metrics["velocity-distill/rel_velocity_err"] == pytest.approx(json.loads(r.stdout)["arms"][
        "velocity-distill"]["rel_velocity_err"])
    assert (cut / "figures" / "summary.png").stat().st_size > 0
    saved = json.loads((cut / "config.json").read_text())
    assert saved["config"]["seeds"] == [0, 1] and saved["config"]["experiment"]["model"]["dim"] == 16
