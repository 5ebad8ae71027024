"""``parsimon latents``: train a Unified Latents model (or a baseline), sample from a run, sweep c_lf.

Only light modules are imported here; torch, diffusers and the models load inside the commands. Under
``torchrun`` the ``train`` command trains with DDP (gloo on CPU, NCCL with ``--device cuda``)::

    torchrun --nproc_per_node 2 -m parsimon.cli latents train --out runs/ul-ddp --device cuda
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from parsimon.cliutil import choices as _choices
from parsimon.cliutil import config_option, out_option, ray_option, resume_option, seed_option
from parsimon.errors import ConfigError
from parsimon.latents.names import (
    ARCHS,
    DECODER_KINDS,
    ENCODER_VARIANCES,
    METHOD_NAMES,
    PRECISIONS,
    PRIOR_MODES,
    SAMPLER_NAMES,
)

__all__ = ["COMMANDS", "app", "build_config"]

app = typer.Typer(help="Unified Latents (arXiv 2602.17270): encoder + diffusion prior + diffusion decoder trained "
                  "jointly, the latent bitrate bound, the stage-2 base model, baselines (KL autoencoder, pixel "
                  "diffusion) and the loss-factor sweep.", no_args_is_help=True)
COMMANDS = {"latents": app}

MethodName = _choices(METHOD_NAMES)
ArchName = _choices(ARCHS)
VarianceName = _choices(ENCODER_VARIANCES)
PriorModeName = _choices(PRIOR_MODES)
DecoderKindName = _choices(DECODER_KINDS)
SamplerName = _choices(SAMPLER_NAMES)
PrecisionName = _choices(PRECISIONS)

_SECTIONS = ("data", "ul", "klae", "base", "pixel", "stage1", "stage2", "eval")


def _data_section(data: str | None, image_size: int | None, channels: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data is not None:
        if data in ("digits", "patches"):
            out["name"] = data
        elif Path(data).is_dir():
            out.update(name="folder", path=str(Path(data).resolve()))
        else:
            raise ConfigError(f"`--data` must be digits, patches or an image folder; {data!r} is neither")
    if image_size is not None:
        out["image_size"] = image_size
    if channels is not None:
        out["channels"] = channels
    return out


def build_config(config_file: Path | None, options: dict[str, dict[str, Any]]) -> Any:
    """The experiment config: defaults, then ``--config FILE`` (TOML/JSON with top-level ``method``/``fd_at``
    and tables ``[ul]``, ``[stage1]``, ``[stage2]``, ``[data]``, ``[base]``, ``[pixel]``, ``[klae]``, ``[eval]``),
    then the command-line options (those given)."""
    import dataclasses

    from parsimon.cliutil import apply_overrides, load_config_file
    from parsimon.latents.data import DataConfig
    from parsimon.latents.experiment import ExperimentConfig

    cfg = ExperimentConfig()
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        layers.append((f"`--config` {config_file}", load_config_file(config_file)))
    layers.append(("command line", options))
    for source, layer in layers:
        top = {k: v for k, v in layer.items() if k not in _SECTIONS and k != "ae_data"}
        sections: dict[str, Any] = {}
        for name in _SECTIONS:
            values = {k: v for k, v in (layer.get(name) or {}).items() if v is not None}
            if not isinstance(layer.get(name, {}), dict):
                raise ConfigError(f"{source}: `{name}` must be a table of fields")
            if values:
                sections[name] = apply_overrides(getattr(cfg, name), values, source=f"{source} [{name}]")
        ae = layer.get("ae_data")
        if ae:
            sections["ae_data"] = apply_overrides(cfg.ae_data or DataConfig(), ae, source=f"{source} [ae_data]")
        top = {k: v for k, v in top.items() if v is not None}
        if "fd_at" in top:
            top["fd_at"] = tuple(int(s) for s in top["fd_at"])
        unknown = sorted(set(top) - {"method", "fd_at"})
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; known: method, fd_at, ae_data, "
                              f"{', '.join(_SECTIONS)}")
        try:
            cfg = dataclasses.replace(cfg, **sections, **top)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{source}: {exc}") from None
    # the model's image shape is the data's
    native = {"digits": 1, "patches": 3, "folder": 3}[cfg.data.name]
    return dataclasses.replace(cfg, ul=dataclasses.replace(cfg.ul, image_size=cfg.data.image_size,
                                                            image_channels=cfg.data.channels or native))


def _int_list(name: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"`{name}` must be comma-separated integers, got {text!r}") from None


def _float_list(name: str, text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"`{name}` must be comma-separated numbers, got {text!r}") from None


def _maybe_init_distributed(device: str | None) -> bool:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    use_cuda = bool(device and device.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def _model_options(*, method, data, image_size, channels, loss_factor, bias, lambda_z0, latent_channels,
                   latent_size, encoder_variance, prior_mode, decoder_kind, decoder_arch, steps, base_steps,
                   batch_size, lr, device, precision, samples, t_samples, sampler, fd_at, ae_data,
                   sample_steps=None) -> dict:
    stage = {"batch_size": batch_size, "lr": lr, "device": device, "precision": precision}
    return {
        "method": method,
        "fd_at": _int_list("--fd-at", fd_at),
        "data": _data_section(data, image_size, channels),
        "ae_data": _data_section(ae_data, image_size, channels) if ae_data else None,
        "ul": {"loss_factor": loss_factor, "bias": bias, "lambda_z0": lambda_z0, "latent_channels": latent_channels,
               "latent_size": latent_size, "encoder_variance": encoder_variance, "prior_mode": prior_mode,
               "decoder_kind": decoder_kind, "decoder_arch": decoder_arch},
        # the base model's max log-SNR is tied to λ_z(0) (§3.3)
        "base": {"lambda_max": lambda_z0},
        "stage1": {"steps": steps, **stage},
        "stage2": {"steps": base_steps, **stage},
        "eval": {"n_samples": samples, "t_samples": t_samples, "sampler": sampler, "decoder_steps": sample_steps,
                 "latent_steps": sample_steps},
    }


@app.command("train")
def train_cmd(
    out: Path = out_option("latents train"),
    seed: int = seed_option(),
    resume: bool = resume_option(),
    config: Path = config_option(),
    method: MethodName = typer.Option(None, "--method", help="ul (Unified Latents), klae (SD-style KL autoencoder + "
                                      "the same base model) or pixel (pixel-space diffusion). Default ul."),
    data: str = typer.Option(None, "--data", help="digits (scikit-learn, default), patches (RGB patches of "
                             "scikit-learn's sample photographs) or a folder of images (DIR)."),
    image_size: int = typer.Option(None, "--image-size", min=2, help="Image side (digits: 8, larger upsamples)."),
    channels: int = typer.Option(None, "--channels", help="1 or 3 (convert); default the data's own."),
    loss_factor: float = typer.Option(None, "--loss-factor", help="c_lf, the decoder loss factor (paper: 1.5)."),
    bias: float = typer.Option(None, "--bias", help="b of the decoder's sigmoid weighting sigmoid(b − λ)."),
    lambda_z0: float = typer.Option(None, "--lambda-z0", help="λ_z(0): encoder noise = the prior's max log-SNR "
                                    "(paper 5; ablation B: 10). Also the base model's max log-SNR."),
    latent_channels: int = typer.Option(None, "--latent-channels", min=1, help="Latent channels."),
    latent_size: int = typer.Option(None, "--latent-size", min=1, help="Latent side (must divide the image side)."),
    encoder_variance: VarianceName = typer.Option(None, "--encoder-variance", help="fixed (paper) or learned "
                                                  "(ablation D, Eq. 5)."),
    prior_mode: PriorModeName = typer.Option(None, "--prior-mode", help="joint (paper) or stopgrad_kl "
                                             "(ablation A: stop-gradient prior + discounted KL to N(0, I))."),
    decoder_kind: DecoderKindName = typer.Option(None, "--decoder-kind", help="diffusion (paper) or mse "
                                                 "(Table 5's MSE decoder)."),
    decoder_arch: ArchName = typer.Option(None, "--decoder-arch", help="mlp (CPU default) or unet (diffusers "
                                          "UNet2DModel)."),
    steps: int = typer.Option(None, "--steps", min=0, help="Stage-1 training steps (UL joint / KL autoencoder)."),
    base_steps: int = typer.Option(None, "--base-steps", min=0, help="Stage-2 steps (base model, or the pixel model); "
                                   "0 skips stage 2 for ul (samples from the prior)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Global batch size (split over DDP ranks)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (Adam, cosine decay)."),
    device: str = typer.Option(None, "--device", help="cpu (default), cuda or cuda:N."),
    precision: PrecisionName = typer.Option(None, "--precision", help="fp32 or bf16 (autocast)."),
    samples: int = typer.Option(None, "--samples", min=2, help="Generated images for gen_fd and nn_dist."),
    t_samples: int = typer.Option(None, "--t-samples", min=1, help="Stratified t per held-out image for the bound."),
    sampler: SamplerName = typer.Option(None, "--sampler", help="ddpm (ancestral) or ddim."),
    sample_steps: int = typer.Option(None, "--sample-steps", min=1, help="Sampler steps of the evaluation (latent "
                                     "model and decoder each)."),
    fd_at: str = typer.Option(None, "--fd-at", help="Stage-2 steps at which to also measure gen FD, e.g. 500,1000."),
    ae_data: str = typer.Option(None, "--ae-data", help="Ablation C: train stage 1 on other data of the same shape "
                                "(digits, patches or DIR)."),
) -> None:
    """Train one model and write the run folder (config.json, events.jsonl, metrics.json, figures/, the model).

    metrics.json holds bits_per_pixel (± bits_per_pixel_stderr), psnr, recon_fd, gen_fd, nn_dist, train_flops
    (paper count) and train_flops_measured (torch.utils.flop_counter), among others.
    """
    opts = _model_options(method=method, data=data, image_size=image_size, channels=channels, loss_factor=loss_factor,
                          bias=bias, lambda_z0=lambda_z0, latent_channels=latent_channels, latent_size=latent_size,
                          encoder_variance=encoder_variance, prior_mode=prior_mode, decoder_kind=decoder_kind,
                          decoder_arch=decoder_arch, steps=steps, base_steps=base_steps, batch_size=batch_size,
                          lr=lr, device=device, precision=precision, samples=samples, t_samples=t_samples,
                          sampler=sampler, fd_at=fd_at, ae_data=ae_data, sample_steps=sample_steps)
    cfg = build_config(config, opts)
    distributed = _maybe_init_distributed(cfg.stage1.device)
    from parsimon.latents.experiment import run_experiment

    try:
        metrics = run_experiment(cfg, out_dir=out, seed=seed, resume=resume)
    finally:
        if distributed:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        keys = ("bits_per_pixel", "bits_per_pixel_stderr", "psnr", "recon_fd", "gen_fd", "nn_dist", "train_flops",
                "train_flops_measured")
        typer.echo(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=1))


@app.command("sample")
def sample_cmd(
    run: Path = typer.Argument(..., help="A run folder written by `parsimon latents train`."),
    n: int = typer.Option(64, "--n", min=1, help="Number of images."),
    out: Path = typer.Option(None, "--out", metavar="FILE", help="PNG to write (default RUN/figures/sample-<seed>.png)."),
    seed: int = seed_option(),
    steps: int = typer.Option(50, "--steps", min=1, help="Sampler steps (latent model and decoder each)."),
    sampler: SamplerName = typer.Option("ddpm", "--sampler", help="ddpm (ancestral) or ddim."),
    prior: bool = typer.Option(False, "--prior", help="UL: generate the latents with the stage-1 prior instead of "
                               "the base model."),
) -> None:
    """Generate N images from a trained run (Algorithm 2 for UL) and write them as one image grid."""
    from parsimon.latents.generate import sample_run

    path = sample_run(run, n, out=out, seed=seed, steps=steps, sampler=sampler, use_prior=prior)
    typer.echo(f"wrote {path}")


@app.command("sweep")
def sweep_cmd(
    out: Path = out_option("latents sweep"),
    resume: bool = resume_option(),
    config: Path = config_option(),
    ray: str = ray_option(),
    loss_factors: str = typer.Option("1.3,1.5,1.7,1.9,2.1", "--loss-factors", help="The c_lf values (Table 2)."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds per c_lf (error bars)."),
    data: str = typer.Option(None, "--data", help="digits (default), patches or an image folder (DIR)."),
    image_size: int = typer.Option(None, "--image-size", min=2, help="Image side."),
    channels: int = typer.Option(None, "--channels", help="1 or 3; default the data's own."),
    bias: float = typer.Option(None, "--bias", help="b of the decoder's sigmoid weighting."),
    steps: int = typer.Option(None, "--steps", min=0, help="Stage-1 steps per point."),
    base_steps: int = typer.Option(None, "--base-steps", min=0, help="Stage-2 steps per point (0: prior samples)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Batch size."),
    device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N."),
    samples: int = typer.Option(None, "--samples", min=2, help="Generated images per point."),
) -> None:
    """Run the loss-factor sweep of the paper's Table 2 (bits/pixel, PSNR, FDs per c_lf; mean ± s.e. over seeds)."""
    opts = _model_options(method="ul", data=data, image_size=image_size, channels=channels, loss_factor=None,
                          bias=bias, lambda_z0=None, latent_channels=None, latent_size=None, encoder_variance=None,
                          prior_mode=None, decoder_kind=None, decoder_arch=None, steps=steps, base_steps=base_steps,
                          batch_size=batch_size, lr=None, device=device, precision=None, samples=samples,
                          t_samples=None, sampler=None, fd_at=None, ae_data=None)
    cfg = build_config(config, opts)
    from parsimon.latents.sweep import run_sweep

    res = run_sweep(cfg, _float_list("--loss-factors", loss_factors), _int_list("--seeds", seeds) or (),
                out_dir=out, resume=resume, ray_address=ray)
    for row in res["rows"]:
        typer.echo(f"c_lf={row['loss_factor']:g}: bits/pixel {row.get('bits_per_pixel', float('nan')):.4f} "
                   f"± {row.get('bits_per_pixel_se', float('nan')):.4f}, PSNR {row.get('psnr', float('nan')):.2f} dB, "
                   f"gen FD {row.get('gen_fd', float('nan')):.3g}")
    typer.echo(f"sweep written to {res['dir']}")
