"""The loss terms of Unified Latents (Algorithm 1, Eq. 1–5), as pure functions of tensors.

All terms are per example, in nats, summed over dimensions (``[B]`` tensors); the training loss averages
them over the batch. Shapes: ``eps``, ``eps_hat`` are ``[B, ...]``; ``dlam_dt``, ``w`` are ``[B]``.

* Prior / rate term (unweighted ELBO, Eq. 2)::

      L_z = −λ_z'(t)/2 · ||ε − ε̂(z_t, t)||²  +  KL[N(α_z(1) z_clean, σ_z(1)² I) || N(0, I)]

  written in ε-form (``exp(λ)·||z − ẑ||² = ||ε − ε̂||²``). Both parts are ≥ 0 (``λ' < 0``), and the
  expectation over t bounds ``KL[q(z_0|x) || p_θ(z_0)]`` (Eq. 3), so ``E[L_z]/ln 2`` bounds the latent's
  bits per image.
* Decoder term (sigmoid-reweighted ELBO times the loss factor c_lf)::

      L_x = −λ_x'(t)/2 · c_lf · w(λ_x(t)) · ||ε − ε̂(x_t, z_0, t)||²

  Decision B6.2: Eq. 4 / Alg. 1 print ``+dλ/dt`` for the decoder while the prior has ``−dλ/dt``; λ
  decreases in t, so ``+dλ/dt`` would make the loss negative. We use ``−dλ/dt`` for both.
* Learned encoder variance (ablation D, Eq. 5): ``L_e = −½ Σ_d log(σ_z,d² e^{λ_z(0)} + 1)``, the entropy
  correction for the extra encoder noise (added to the rate).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "decoder_term",
    "gaussian_kl_to_standard",
    "learned_variance_term",
    "mse_decoder_term",
    "prior_diffusion_term",
    "prior_kl_term",
]


def _sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


def prior_diffusion_term(eps: torch.Tensor, eps_hat: torch.Tensor, dlam_dt: torch.Tensor) -> torch.Tensor:
    """``−λ'(t)/2 · ||ε − ε̂||²`` per example (nats): the one-sample estimate of the continuous-time
    diffusion loss (unweighted ELBO)."""
    return -0.5 * dlam_dt * _sum((eps - eps_hat).float().pow(2))


def prior_kl_term(z_clean: torch.Tensor, lambda_1: float) -> torch.Tensor:
    """``KL[N(α_1 z, σ_1² I) || N(0, I)] = ½ Σ_d (α_1² z_d² + σ_1² − 1 − log σ_1²)`` per example (nats),
    with ``α_1² = sigmoid(λ(1))``, ``σ_1² = sigmoid(−λ(1))``."""
    a2 = 1.0 / (1.0 + math.exp(-lambda_1))
    s2 = 1.0 / (1.0 + math.exp(lambda_1))
    return 0.5 * _sum(a2 * z_clean.float().pow(2) + (s2 - 1.0 - math.log(s2)))


def gaussian_kl_to_standard(mean: torch.Tensor, std: float) -> torch.Tensor:
    """``KL[N(mean, std² I) || N(0, I)] = ½ Σ_d (mean_d² + std² − 1 − 2 log std)`` per example (nats).

    Ablation A regularises the encoder with this (discounted) KL of ``q(z_0|x) = N(α_0 z, σ_0² I)``.
    """
    return 0.5 * _sum(mean.float().pow(2) + (std * std - 1.0 - 2.0 * math.log(std)))


def decoder_term(eps: torch.Tensor, eps_hat: torch.Tensor, dlam_dt: torch.Tensor, w: torch.Tensor,
                 loss_factor: float) -> torch.Tensor:
    """``−λ'(t)/2 · c_lf · w(λ) · ||ε − ε̂||²`` per example (decision B6.2: ``−dλ/dt``)."""
    return -0.5 * dlam_dt * loss_factor * w * _sum((eps - eps_hat).float().pow(2))


def mse_decoder_term(x: torch.Tensor, x_hat: torch.Tensor, sigma: float, loss_factor: float) -> torch.Tensor:
    """The MSE decoder's loss (Table 5's diffusion/MSE row): ``c_lf · ||x − x̂||² / (2 σ²)`` per example, a
    Gaussian likelihood with fixed standard deviation ``sigma`` up to a constant."""
    return loss_factor * _sum((x - x_hat).float().pow(2)) / (2.0 * sigma * sigma)


def learned_variance_term(log_var: torch.Tensor, lambda_0: float) -> torch.Tensor:
    """``L_e = −½ Σ_d log(σ_z,d² e^{λ_z(0)} + 1)`` per example (Eq. 5; ablation D), ``log_var = log σ_z²``."""
    return -0.5 * _sum(torch.nn.functional.softplus(log_var.float() + lambda_0))
