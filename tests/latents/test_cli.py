"""The command line: registries agree with the light name lists, bad input is one line (exit 2), a short
train → sample round trip writes the run folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.latents import names

runner = CliRunner()


def test_names_match_the_registries():
    from parsimon.latents.data import DATASETS
    from parsimon.latents.experiment import METHODS
    from parsimon.latents.metrics import FEATURES
    from parsimon.latents.nets import DENOISERS, ENCODERS
    from parsimon.latents.sampling import SAMPLERS

    assert tuple(METHODS.names()) == names.METHOD_NAMES
    assert tuple(DATASETS.names()) == names.DATASET_NAMES
    assert tuple(DENOISERS.names()) == names.ARCHS
    assert tuple(ENCODERS.names()) == names.ENCODER_ARCHS
    assert tuple(SAMPLERS.names()) == names.SAMPLER_NAMES
    assert tuple(FEATURES.names()) == tuple(n for n in names.FEATURE_NAMES if n != "auto")


@pytest.mark.parametrize("args,needle", [
    (["--loss-factor", "-1"], "loss_factor"),
    (["--latent-size", "3"], "latent_size"),
    (["--data", "/no/such/folder"], "--data"),
    (["--fd-at", "5,x"], "--fd-at"),
    (["--steps", "10", "--fd-at", "99999"], "fd_at"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, args, needle):
    res = runner.invoke(app, ["latents", "train", "--out", str(tmp_path / "r"), *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # refused before any run folder was made


def test_config_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ul]\nloss_factr = 1.5\n")
    res = runner.invoke(app, ["latents", "train", "--config", str(bad), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "loss_factr" in res.output and "Traceback" not in res.output
    bad.write_text("[stage1]\nsteps = 'many'\n")
    res = runner.invoke(app, ["latents", "train", "--config", str(bad), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "steps" in res.output


def test_unknown_choice_is_rejected_by_typer(tmp_path):
    res = runner.invoke(app, ["latents", "train", "--method", "vae", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "klae" in res.output


def test_train_then_sample(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[ul]\nencoder_hidden = 32\nprior_hidden = 32\nprior_depth = 1\ndecoder_hidden = 32\n"
                   "decoder_depth = 1\n[base]\nhidden = 32\ndepth = 1\n[stage1]\nwarmup = 1\n[stage2]\nwarmup = 1\n")
    out = tmp_path / "run"
    res = runner.invoke(app, ["latents", "train", "--config", str(cfg), "--loss-factor", "1.5", "--steps", "3",
                              "--base-steps", "2", "--batch-size", "16", "--samples", "8", "--t-samples", "2",
                              "--sample-steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("bits_per_pixel", "bits_per_pixel_stderr", "psnr", "recon_fd", "gen_fd", "nn_dist", "train_flops",
                "train_flops_measured"):
        assert isinstance(metrics[key], float), key
    assert json.loads((out / "config.json").read_text())["config"]["ul"]["loss_factor"] == 1.5
    res = runner.invoke(app, ["latents", "sample", str(out), "--n", "6", "--steps", "2"])
    assert res.exit_code == 0, res.output
    assert (out / "figures" / "sample-0.png").is_file()
    res = runner.invoke(app, ["latents", "sample", str(tmp_path), "--n", "2"])
    assert res.exit_code == 2 and "no trained model" in res.output
