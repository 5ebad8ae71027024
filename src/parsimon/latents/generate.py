"""Samples from a finished run folder, whatever its method (UL through :class:`ULPipeline`, or a baseline)."""

from __future__ import annotations

from pathlib import Path

import torch

from parsimon.errors import ConfigError
from parsimon.latents.figures import save_grid

__all__ = ["load_sampler", "sample_run"]


def load_sampler(run: str | Path, *, steps: int = 50, sampler: str = "ddpm", use_prior: bool = False):
    """``fn(n, generator) -> images in [−1, 1]`` for the model saved in a run folder."""
    run = Path(run)
    if (run / "pipeline" / "model_index.json").is_file():
        from parsimon.latents.pipeline import ULPipeline

        pipe = ULPipeline.from_pretrained(run / "pipeline")
        return lambda n, g: pipe(n, latent_steps=steps, decoder_steps=steps, sampler=sampler, use_prior=use_prior,
                                 generator=g).images * 2 - 1
    if use_prior:
        raise ConfigError(f"`--prior` needs a UL run; {run} holds a baseline")
    from parsimon.latents.diffusion import DiffusionModel

    if (run / "klae").is_dir() and (run / "base").is_dir():
        from diffusers import AutoencoderKL

        ae = AutoencoderKL.from_pretrained(run / "klae", low_cpu_mem_usage=False).eval()
        base = DiffusionModel.from_pretrained(run / "base", low_cpu_mem_usage=False).eval()
        return lambda n, g: ae.decode(base.generate(n, steps=steps, sampler=sampler, generator=g)).sample.clamp(-1, 1)
    if (run / "pixel").is_dir():
        base = DiffusionModel.from_pretrained(run / "pixel", low_cpu_mem_usage=False).eval()
        return lambda n, g: base.generate(n, steps=steps, sampler=sampler, generator=g).clamp(-1, 1)
    raise ConfigError(f"`run` {run} holds no trained model (pipeline/, klae/+base/ or pixel/); "
                      "is it a finished `parsimon latents train` run?")


@torch.no_grad()
def sample_run(run: str | Path, n: int, *, out: str | Path | None = None, seed: int = 0, steps: int = 50,
               sampler: str = "ddpm", use_prior: bool = False) -> Path:
    """Generate ``n`` images from the run's model and write them as one grid PNG; returns its path."""
    if n < 1:
        raise ConfigError(f"`--n` must be >= 1, got {n}")
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"`run` {run}: no such folder")
    fn = load_sampler(run, steps=steps, sampler=sampler, use_prior=use_prior)
    images = fn(n, torch.Generator().manual_seed(seed))
    path = Path(out) if out is not None else run / "figures" / f"sample-{seed}.png"
    return save_grid(images, path)
