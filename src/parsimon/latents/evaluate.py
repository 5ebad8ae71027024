"""Evaluation of a trained model: the latent bitrate bound, reconstructions and generated samples.

* :func:`rate_bound` — bits per image and per pixel of the latent, ``E_x E_t[L_z] / ln 2`` on held-out
  images (Eq. 3), with ``t_samples`` stratified times per image (one uniform offset per image, ``K``
  strata) and its standard error over images.
* :func:`reconstruction_metrics` — PSNR of decoder *samples* from the noisy latent ``z_0`` (the paper's PSNR),
  and the Fréchet distance between features of the held-out images and of their reconstructions (the
  analogue of rFID, whose reference statistics come from the same images).
* :func:`generation_metrics` — Fréchet distance of generated samples against the training images, and the
  nearest-neighbour distance to the training set (memorisation check) beside the held-out images' own.

Every generation and reconstruction draws its noise from a fresh generator seeded with ``EvalConfig.seed``
(common random numbers), so two models compared in one run, or two runs, see the same noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from parsimon.errors import ConfigError
from parsimon.latents.metrics import FeatureNet, frechet_distance, nn_distance, psnr
from parsimon.latents.names import FEATURE_NAMES
from parsimon.latents.sampling import SAMPLERS, decode_latent

__all__ = ["EvalConfig", "generation_metrics", "rate_bound", "reconstruction_metrics"]


@dataclass(frozen=True)
class EvalConfig:
    """How a trained model is measured (our choices; the paper uses 50k samples and Inception features)."""

    t_samples: int = 64  # stratified t per held-out image for the bound (spec B2: "many t samples")
    decoder_steps: int = 50  # decoder sampler steps for reconstructions and samples (B7 suggests 100)
    latent_steps: int = 50  # base-model / prior sampler steps
    sampler: str = "ddpm"  # "ddpm" | "ddim"
    n_samples: int = 1000  # generated images for gen FD and nn_dist
    features: str = "auto"  # "auto" | "classifier" | "random-conv"
    seed: int = 1234  # the evaluation's own generator (independent of training)

    def __post_init__(self) -> None:
        for name in ("t_samples", "decoder_steps", "latent_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.n_samples < 2:
            raise ConfigError(f"`n_samples` must be >= 2, got {self.n_samples}")
        SAMPLERS.check(self.sampler)
        if self.features not in FEATURE_NAMES:
            raise ConfigError(f"`features` must be one of {list(FEATURE_NAMES)}, got {self.features!r}")


@torch.no_grad()
def rate_bound(model, images: torch.Tensor, *, t_samples: int = 64, generator: torch.Generator | None = None,
               batch: int = 512) -> dict[str, float]:
    """The latent bitrate bound on ``images`` (held-out) in bits per image and per pixel, with standard errors.

    Per image, ``L_z`` is averaged over ``t_samples`` stratified times ``t_k = (k + u)/K``; the standard
    error is the standard deviation of these per-image estimates over images divided by ``sqrt(N)`` (it
    includes the remaining t-sampling noise).
    """
    device = next(model.parameters()).device
    per_image = []
    k = t_samples
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device)
        z_mean, log_var = model.encode_stats(x)
        n = x.shape[0]
        acc = torch.zeros(n, device=device, dtype=torch.float64)
        u = torch.rand(n, generator=generator)
        for j in range(k):
            t = ((j + u) / k).to(device)
            z = z_mean
            if log_var is not None:
                z = z_mean + (0.5 * log_var).exp() * torch.randn(z_mean.shape, generator=generator).to(device)
            eps = torch.randn(z_mean.shape, generator=generator).to(device)
            acc += model.rate(z, t, eps, log_var).double()
        per_image.append(acc / k)
    nats = torch.cat(per_image)
    pixels = model.cfg.image_size ** 2
    mean, se = float(nats.mean()), float(nats.std() / math.sqrt(len(nats))) if len(nats) > 1 else float("nan")
    return {"bits_per_image": mean / math.log(2), "bits_per_image_stderr": se / math.log(2),
            "bits_per_pixel": mean / math.log(2) / pixels, "bits_per_pixel_stderr": se / math.log(2) / pixels,
            "nats_per_image": mean, "bound_t_samples": k, "bound_images": len(nats)}


@torch.no_grad()
def reconstruct(model, images: torch.Tensor, *, steps: int, sampler: str, generator: torch.Generator | None,
                batch: int = 512) -> torch.Tensor:
    """Decoder samples from ``z_0 = α_0 E(x) + σ_0 ε`` for each image (on the CPU, in ``[−1, 1]``)."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device)
        z = model.encode(x)
        z0 = model.noisy_latent(z, torch.randn(z.shape, generator=generator).to(device))
        out.append(decode_latent(model, z0, steps, sampler, generator=generator).cpu())
    return torch.cat(out)


def reconstruction_metrics(model, test: torch.Tensor, features: FeatureNet, *, steps: int, sampler: str,
                           generator: torch.Generator | None) -> tuple[dict[str, float], torch.Tensor]:
    """``psnr`` (mean over held-out images, dB), ``psnr_stderr`` and ``recon_fd``; returns the reconstructions too."""
    rec = reconstruct(model, test, steps=steps, sampler=sampler, generator=generator)
    p = psnr(rec, test)
    fd = frechet_distance(features.features(test), features.features(rec))
    return {"psnr": float(p.mean()), "psnr_stderr": float(p.std() / math.sqrt(len(p))), "recon_fd": fd}, rec


def generation_metrics(sample_fn: Callable[[int], torch.Tensor], n: int, test: torch.Tensor, train: torch.Tensor,
                       features: FeatureNet, *, prefix: str = "gen", batch: int = 500
                       ) -> tuple[dict[str, float], torch.Tensor]:
    """FD of ``n`` samples (``sample_fn(k) -> [k, C, H, W]`` in ``[−1, 1]``) against the training images (FID's
    reference; 1,500 digits give steadier statistics than the 297 held-out ones), and their mean
    nearest-neighbour distance to the training set beside the held-out images' own. Returns the metrics and
    the samples."""
    parts, left = [], n
    while left > 0:
        k = min(batch, left)
        parts.append(sample_fn(k).detach().float().cpu().clamp(-1, 1))
        left -= k
    samples = torch.cat(parts)
    out = {f"{prefix}_fd": frechet_distance(features.features(train), features.features(samples))}
    if prefix == "gen":
        out["nn_dist"] = float(nn_distance(samples, train).mean())
        out["nn_dist_test"] = float(nn_distance(test, train).mean())
    return out, samples
