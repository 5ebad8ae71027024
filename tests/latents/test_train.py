"""The training loop: a short run whose loss falls, exact resume (loop and whole experiment), bad configs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from parsimon.errors import ConfigError
from parsimon.latents.data import DataConfig, load_data
from parsimon.latents.experiment import ExperimentConfig, quick_config, run_experiment
from parsimon.latents.model import ULConfig, UnifiedLatents
from parsimon.latents.train import TrainConfig, fit, lr_at

SMALL = {"encoder_hidden": 32, "prior_hidden": 32, "prior_depth": 1, "decoder_hidden": 48, "decoder_depth": 1}


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig())


def test_short_training_run_loss_falls(digits):
    torch.manual_seed(0)
    job = UnifiedLatents(ULConfig(**SMALL))
    res, _ = fit(job, digits.train, TrainConfig(steps=150, batch_size=64, log_every=25, warmup=10, ckpt_every=0))
    first, last = res.losses[0][1], res.losses[-1][1]
    assert res.steps == 150 and len(res.losses) == 6
    assert last < 0.5 * first, res.losses


def test_fit_resume_is_bitwise(digits):
    """N steps + checkpoint + N steps == 2N steps (batches, noise, Adam and EMA state all resumed)."""
    cfg = TrainConfig(steps=8, batch_size=16, warmup=3, ckpt_every=4, log_every=2)
    torch.manual_seed(0)
    a = UnifiedLatents(ULConfig(**SMALL, decoder_dropout=0.0))
    _, ema_a = fit(a, digits.train, cfg, seed=5)
    saved = {}
    torch.manual_seed(0)
    b = UnifiedLatents(ULConfig(**SMALL, decoder_dropout=0.0))
    fit(b, digits.train, cfg, seed=5, until=4, on_checkpoint=lambda s: saved.update(state=s))
    assert saved["state"]["step"] == 4
    state = saved["state"]
    torch.manual_seed(123)  # a different initialisation: the checkpoint must overwrite it
    c = UnifiedLatents(ULConfig(**SMALL, decoder_dropout=0.0))
    res, ema_c = fit(c, digits.train, cfg, seed=5, state=state)
    assert res.steps == 8
    for (name, p), q in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    for p, q in zip(ema_a.shadow_params, ema_c.shadow_params, strict=True):
        assert torch.equal(p, q)


def _tiny(**over):
    kw = {"ul": {**SMALL, "decoder_dropout": 0.1}, "base": {"hidden": 32, "depth": 1},
          "stage1": {"steps": 6, "batch_size": 16, "warmup": 2, "ckpt_every": 2, "log_every": 2},
          "stage2": {"steps": 4, "batch_size": 16, "warmup": 2, "ckpt_every": 2, "log_every": 2},
          "eval": {"n_samples": 16, "t_samples": 2, "decoder_steps": 3, "latent_steps": 3}}
    kw.update(over)
    return quick_config(**kw)


def test_experiment_resume_equals_uninterrupted_run(tmp_path):
    """An experiment stopped in stage 1, resumed and stopped in stage 2, then resumed to the end, gives the same
    weights (bitwise) and metrics as one uninterrupted run; dropout is on, so the RNG states must be restored."""
    cfg = _tiny()
    full = run_experiment(cfg, out_dir=tmp_path / "full", seed=3, progress=False, ledger=False)
    part = tmp_path / "part"
    assert run_experiment(cfg, out_dir=part, seed=3, progress=False, ledger=False, until={"stage1": 3})["stopped"] == "stage1"
    assert run_experiment(cfg, out_dir=part, seed=3, resume=True, progress=False, ledger=False,
                          until={"stage2": 2})["stopped"] == "stage2"
    resumed = run_experiment(cfg, out_dir=part, seed=3, resume=True, progress=False, ledger=False)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["state"]
    b = torch.load(part / "checkpoint.pt", weights_only=False)["state"]
    for stage in ("stage1_final", "stage2_final"):
        for name, w in a[stage].items():
            assert torch.equal(w, b[stage][name]), (stage, name)
    for key in ("bits_per_pixel", "psnr", "recon_fd", "gen_fd", "nn_dist", "train_flops"):
        assert resumed[key] == full[key], key
    events = (part / "events.jsonl").read_text().splitlines()
    assert sum(json.loads(e).get("type") == "plan" for e in events) == 3  # started + two resumes
    # a resume with another config is refused, naming the field
    with pytest.raises(ConfigError, match="loss_factor"):
        run_experiment(_tiny(ul={**SMALL, "decoder_dropout": 0.1, "loss_factor": 1.9}), out_dir=part, seed=3,
                       resume=True, progress=False, ledger=False)


def test_bad_configs_name_the_field():
    with pytest.raises(ConfigError, match="loss_factor"):
        ULConfig(loss_factor=0.0)
    with pytest.raises(ConfigError, match="latent_size"):
        ULConfig(latent_size=3)
    with pytest.raises(ConfigError, match="encoder_variance"):
        ULConfig(encoder_variance="random")
    with pytest.raises(ConfigError, match="lambda_max"):
        ExperimentConfig(ul=ULConfig(lambda_z0=10.0))  # the base model's max log-SNR is tied to λ_z(0)
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=-1)
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3 * 0.5 * (1 + torch.cos(torch.tensor(9 * torch.pi / 100)).item()))
    assert lr_at(100, cfg) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(lr_schedule="constant", warmup=0).lr == lr_at(57, TrainConfig(lr_schedule="constant", warmup=0))


def test_bf16_autocast_step_on_cpu(digits):
    """precision="bf16" runs the forward under autocast; the loss stays finite and the weights move."""
    torch.manual_seed(0)
    job = UnifiedLatents(ULConfig(**SMALL))
    before = [p.detach().clone() for p in job.parameters()]
    res, _ = fit(job, digits.train, TrainConfig(steps=3, batch_size=8, warmup=1, ckpt_every=0, log_every=1,
                                                precision="bf16"))
    assert all(math.isfinite(v) for _, v in res.losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, job.parameters(), strict=True))


@pytest.mark.gpu
def test_cuda_bf16_run(tmp_path):
    cfg = _tiny(stage1={"steps": 4, "batch_size": 16, "warmup": 1, "device": "cuda", "precision": "bf16"},
                stage2={"steps": 4, "batch_size": 16, "warmup": 1, "device": "cuda", "precision": "bf16"})
    m = run_experiment(cfg, out_dir=tmp_path / "gpu", seed=0, progress=False, ledger=False)
    assert math.isfinite(m["bits_per_pixel"]) and math.isfinite(m["gen_fd"])


def test_cuda_without_cuda_is_a_config_error(digits):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="CUDA"):
        fit(UnifiedLatents(ULConfig(**SMALL)), digits.train, TrainConfig(steps=1, device="cuda"))


def test_b6_4_ablation_c_trains_stage1_on_other_data(tmp_path):
    """Decision B6.4: ablation C is what the text describes — the autoencoder (stage 1) trained on other data
    (grey photo patches here), the base model and the evaluation on the data itself (digits)."""
    patches = DataConfig(name="patches", image_size=8, channels=1, n_train=64, n_test=16)
    m = run_experiment(_tiny(ae_data=patches), out_dir=tmp_path / "c", seed=0, progress=False, ledger=False)
    assert m["stage1_data"] == "patches" and m["data"] == "digits"
    assert m["eval_images"] == 297
    with pytest.raises(ConfigError, match="ae_data"):
        run_experiment(_tiny(ae_data=DataConfig(name="patches", image_size=8, n_train=64, n_test=16)),
                       out_dir=tmp_path / "c3", seed=0, progress=False, ledger=False)  # RGB vs grey digits
