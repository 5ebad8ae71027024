"""Unified Latents (arXiv 2602.17270): a deterministic encoder, a diffusion prior on the latents and a diffusion
decoder on the images, trained jointly (Algorithm 1).

One training step on a batch ``x`` (spec B2):

1. ``z_clean = E(x)``; the encoder's output noise is fixed and tied to the prior's minimum noise level:
   ``z_0 = α_z(0) z_clean + σ_z(0) ε_0`` with ``λ_z(0) = 5`` (``α_0 ≈ 0.9966``, ``σ_0 ≈ 0.0818``).
2. Prior (rate) term, unweighted ELBO: ``z_t = α_z(t) z_clean + σ_z(t) ε``,
   ``L_z = −λ_z'/2 ||ε − ε̂(z_t)||² + KL[N(α_z(1) z_clean, σ_z(1)²) || N(0, I)]``.
3. Decoder term, sigmoid-weighted ELBO times c_lf: ``x_t = α_x(t) x + σ_x(t) ε'``,
   ``L_x = −λ_x'/2 · c_lf · sigmoid(b − λ_x) · ||ε' − ε̂(x_t, z_0)||²``.
4. ``L = mean(L_z + L_x)``; encoder, prior and decoder get gradients from the one loss.

The prior starts at the encoder's noise level, so the encoder posterior ``q(z_0|x)`` is the first step of the
prior's forward process and ``E[L_z]`` bounds ``KL[q(z_0|x) || p_θ(z_0)]`` (Eq. 3): the latent's bitrate.

Variants (config fields): ablation A (``prior_mode="stopgrad_kl"``: the prior trains on stop-gradient latents
and the encoder gets a discounted KL to N(0, I)), ablation B (``lambda_z0=10``), ablation D
(``encoder_variance="learned"``, Eq. 5) and Table 5's MSE decoder (``decoder_kind="mse"``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin

from parsimon.errors import ConfigError
from parsimon.latents import losses
from parsimon.latents.names import DECODER_KINDS, ENCODER_VARIANCES, PRIOR_MODES
from parsimon.latents.nets import DENOISERS, ENCODERS, build_denoiser, build_encoder
from parsimon.latents.schedules import (
    PARAMETERIZATIONS,
    SCHEDULES,
    WEIGHTINGS,
    alpha_sigma,
    expand,
    make_schedule,
    sample_t,
    to_x_eps,
    weight,
)

__all__ = ["ULConfig", "UnifiedLatents"]


@dataclass(frozen=True)
class ULConfig:
    """Stage 1 of Unified Latents: shapes, networks, schedules and the two knobs (c_lf, b).

    Defaults are the paper's where it states them (cited), otherwise ours for 8×8 digits on a CPU (spec B7);
    [UNCONFIRMED] marks what the paper does not state.
    """

    image_size: int = 8  # ours: sklearn digits 8×8 (paper: ImageNet 512×512)
    image_channels: int = 1  # ours: grey digits (3 for RGB data)
    latent_size: int = 4  # ours: 2× downsampling (paper: 16×, 32×32 latents at 512, §5)
    latent_channels: int = 2  # ours (paper: 32 channels, Table 3)
    encoder_arch: str = "mlp"  # "mlp" | "conv" (diffusers VAE Encoder); paper: ResNet [128, 256, 512, 512]
    encoder_hidden: int = 128  # mlp width (ours)
    encoder_depth: int = 2  # mlp hidden layers
    encoder_channels: tuple[int, ...] = (32, 64)  # conv: channels per level (levels = log2(image/latent) + 1)
    encoder_variance: str = "fixed"  # paper §3: deterministic encoder, fixed noise; "learned" = ablation D (Eq. 5)
    prior_arch: str = "mlp"  # "mlp" | "unet"; paper: ViT 8 blocks × 1024
    prior_hidden: int = 256  # ours
    prior_depth: int = 3  # ours
    prior_channels: tuple[int, ...] = (32, 64)  # unet only
    prior_parameterization: str = "eps"  # ours (B7: ε-prediction for the prior) [UNCONFIRMED]
    prior_schedule: str = "linear"  # ours (B7) [UNCONFIRMED]
    lambda_z0: float = 5.0  # paper §3: λ_z(0) = 5, the prior's max log-SNR = the encoder noise (ablation B: 10)
    lambda_z1: float = -10.0  # ours (B7) [UNCONFIRMED]
    prior_mode: str = "joint"  # paper; "stopgrad_kl" = ablation A (stop-grad prior + discounted KL to N(0, I))
    kl_weight: float = 0.01  # ablation A only: the KL discount [UNCONFIRMED]
    decoder_kind: str = "diffusion"  # paper; "mse" = Table 5's diffusion prior / MSE decoder row
    decoder_arch: str = "mlp"  # "mlp" | "unet"; paper: UViT [128, 256, 512] + 8 × 1024 transformer blocks
    decoder_hidden: int = 256  # ours
    decoder_depth: int = 3  # ours
    decoder_channels: tuple[int, ...] = (32, 64)  # unet only
    decoder_layers_per_block: int = 1  # unet only
    decoder_attention: bool = False  # unet only
    decoder_dropout: float = 0.0  # ours for short CPU runs (paper B3: 0.1 in the decoder and the base model)
    decoder_parameterization: str = "x"  # paper B1: networks predict clean data x̂ (the loss is the ε-form either way)
    decoder_schedule: str = "linear"  # ours (B7) [UNCONFIRMED]
    lambda_x_max: float = 10.0  # ours (B7) [UNCONFIRMED]
    lambda_x_min: float = -10.0  # ours (B7) [UNCONFIRMED]
    decoder_weighting: str = "sigmoid"  # paper: sigmoid-weighted decoder ELBO (B6.1: sigmoid(b − λ))
    loss_factor: float = 1.5  # paper Table 2/6 baseline c_lf = 1.5 (swept 1.3–2.1)
    bias: float = 2.0  # sigmoid bias b; not stated in the paper [UNCONFIRMED]; ours (B7 sweeps {−2, 0, 2})
    mse_sigma: float = 0.1  # MSE decoder only: the fixed likelihood std on [−1, 1] images [ours]
    rate_warmup: int = 1000  # ours, not in the paper (half the default 2000 stage-1 steps; 0 = off): the rate term's weight rises linearly from 0 to 1 over
    # this many training steps (0 = off), so small models find the informative latent before the prior's
    # pressure closes it (posterior collapse); the bound reported is always the full, unweighted L_z

    def __post_init__(self) -> None:
        for name in ("image_size", "image_channels", "latent_size", "latent_channels", "encoder_hidden",
                     "encoder_depth", "prior_hidden", "prior_depth", "decoder_hidden", "decoder_depth",
                     "decoder_layers_per_block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1, got {v!r}")
        if self.image_size % self.latent_size:
            raise ConfigError(f"`latent_size` ({self.latent_size}) must divide `image_size` ({self.image_size})")
        ENCODERS.check(self.encoder_arch)
        DENOISERS.check(self.prior_arch)
        DENOISERS.check(self.decoder_arch)
        PARAMETERIZATIONS.check(self.prior_parameterization)
        PARAMETERIZATIONS.check(self.decoder_parameterization)
        SCHEDULES.check(self.prior_schedule)
        SCHEDULES.check(self.decoder_schedule)
        WEIGHTINGS.check(self.decoder_weighting)
        for name, value, allowed in (("encoder_variance", self.encoder_variance, ENCODER_VARIANCES),
                                     ("prior_mode", self.prior_mode, PRIOR_MODES),
                                     ("decoder_kind", self.decoder_kind, DECODER_KINDS)):
            if value not in allowed:
                raise ConfigError(f"`{name}` must be one of {list(allowed)}, got {value!r}")
        if not self.lambda_z1 < self.lambda_z0:
            raise ConfigError(f"`lambda_z1` ({self.lambda_z1}) must be below `lambda_z0` ({self.lambda_z0})")
        if not self.lambda_x_min < self.lambda_x_max:
            raise ConfigError(f"`lambda_x_min` ({self.lambda_x_min}) must be below `lambda_x_max` "
                              f"({self.lambda_x_max})")
        if not (self.loss_factor > 0 and math.isfinite(self.loss_factor)):
            raise ConfigError(f"`loss_factor` must be a positive number, got {self.loss_factor}")
        if not math.isfinite(self.bias):
            raise ConfigError(f"`bias` must be finite, got {self.bias}")
        if not 0 <= self.decoder_dropout < 1:
            raise ConfigError(f"`decoder_dropout` must be in [0, 1), got {self.decoder_dropout}")
        if not self.kl_weight >= 0:
            raise ConfigError(f"`kl_weight` must be >= 0, got {self.kl_weight}")
        if not self.mse_sigma > 0:
            raise ConfigError(f"`mse_sigma` must be > 0, got {self.mse_sigma}")
        if isinstance(self.rate_warmup, bool) or not isinstance(self.rate_warmup, int) or self.rate_warmup < 0:
            raise ConfigError(f"`rate_warmup` must be an integer >= 0, got {self.rate_warmup!r}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_size, self.image_size)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ULConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"unknown ULConfig field(s) {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class UnifiedLatents(ModelMixin, ConfigMixin):
    """Encoder + diffusion prior + diffusion decoder (a diffusers ``ModelMixin``: ``save_pretrained`` /
    ``from_pretrained`` work).

    Args:
        ul_config: A :class:`ULConfig` or its dict (default: ``ULConfig()``).

    ``forward(x, noise)`` returns ``(loss, logs)`` for a batch ``x`` ``[B, C, H, W]`` in ``[−1, 1]`` and the
    noise from :meth:`draw`, so the loss is a deterministic function of its inputs (exact resume and DDP
    draw the noise of the global batch once).
    """

    config_name = "config.json"

    def __init__(self, ul_config: dict | ULConfig | None = None) -> None:
        super().__init__()
        cfg = ul_config if isinstance(ul_config, ULConfig) else ULConfig.from_dict(dict(ul_config or {}))
        self.register_to_config(ul_config=cfg.to_dict())
        self.cfg = cfg
        learned = cfg.encoder_variance == "learned"
        self.encoder = build_encoder(cfg.encoder_arch, cfg.image_shape, cfg.latent_shape, hidden=cfg.encoder_hidden,
                                     depth=cfg.encoder_depth, channels=cfg.encoder_channels, layers_per_block=1,
                                     attention=False, learned_variance=learned)
        self.prior = build_denoiser(cfg.prior_arch, cfg.latent_shape, None, hidden=cfg.prior_hidden,
                                    depth=cfg.prior_depth, channels=cfg.prior_channels, layers_per_block=1,
                                    attention=False, dropout=0.0)
        self.decoder = build_denoiser(cfg.decoder_arch, cfg.image_shape, cfg.latent_shape, hidden=cfg.decoder_hidden,
                                      depth=cfg.decoder_depth, channels=cfg.decoder_channels,
                                      layers_per_block=cfg.decoder_layers_per_block, attention=cfg.decoder_attention,
                                      dropout=cfg.decoder_dropout, take_input=cfg.decoder_kind == "diffusion")
        self.prior_schedule = make_schedule(cfg.prior_schedule, cfg.lambda_z0, cfg.lambda_z1)
        self.decoder_schedule = make_schedule(cfg.decoder_schedule, cfg.lambda_x_max, cfg.lambda_x_min)
        self.step = 0  # the training step, set by the loop (for ``rate_warmup``)

    def set_step(self, step: int) -> None:
        """Called by the training loop before each step (0-based)."""
        self.step = int(step)

    def rate_weight(self) -> float:
        """The rate term's weight in the training loss: 1, or the ``rate_warmup`` ramp."""
        w = self.cfg.rate_warmup
        return min(1.0, self.step / w) if w else 1.0

    # -- the pieces
    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(z_clean, None)`` for the deterministic encoder, ``(μ, log σ²)`` for the learned-variance one."""
        out = self.encoder(x)
        if isinstance(out, tuple):
            return out[0].float(), out[1].float()
        return out.float(), None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z_clean = E(x)`` (the mean for a learned-variance encoder)."""
        return self.encode_stats(x)[0]

    def noisy_latent(self, z_clean: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``z_0 = α_z(0) z_clean + σ_z(0) ε``: the encoder's fixed output noise at ``λ_z(0)``."""
        a0, s0 = alpha_sigma(torch.tensor(self.cfg.lambda_z0))
        return a0 * z_clean + s0 * eps

    def prior_predict(self, z_t: torch.Tensor, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ẑ, ε̂)`` of the prior at log-SNR ``lam`` ``[B]``."""
        a, s = (expand(v, z_t) for v in alpha_sigma(lam))
        out = self.prior(z_t, lam).float()
        return to_x_eps(self.cfg.prior_parameterization, out, z_t, a, s)

    def decoder_predict(self, x_t: torch.Tensor, lam: torch.Tensor, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x̂, ε̂)`` of the diffusion decoder conditioned on the noisy latent ``z0``."""
        a, s = (expand(v, x_t) for v in alpha_sigma(lam))
        out = self.decoder(x_t, lam, z0).float()
        return to_x_eps(self.cfg.decoder_parameterization, out, x_t, a, s)

    def mse_decode(self, z0: torch.Tensor) -> torch.Tensor:
        """The MSE decoder's reconstruction ``x̂(z_0)`` (``decoder_kind="mse"`` only)."""
        lam = torch.zeros(z0.shape[0], device=z0.device)
        return self.decoder(None, lam, z0).float()

    # -- the losses
    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The noise of one training batch of ``n`` examples (times and Gaussian draws), on the CPU."""
        cfg = self.cfg
        noise = {"t_z": sample_t(n, generator), "eps_z": torch.randn(n, *cfg.latent_shape, generator=generator),
                 "eps_0": torch.randn(n, *cfg.latent_shape, generator=generator),
                 "t_x": sample_t(n, generator), "eps_x": torch.randn(n, *cfg.image_shape, generator=generator)}
        if cfg.encoder_variance == "learned":
            noise["eps_enc"] = torch.randn(n, *cfg.latent_shape, generator=generator)
        return noise

    def rate(self, z_clean: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
             log_var: torch.Tensor | None = None) -> torch.Tensor:
        """``L_z`` per example (nats): the prior's diffusion term at ``t`` plus the KL at ``t = 1`` (plus
        Eq. 5's ``L_e`` for a learned-variance encoder). Its mean over t and data bounds the latent bits."""
        lam = self.prior_schedule.lam(t)
        a, s = (expand(v, z_clean) for v in alpha_sigma(lam))
        z_t = a * z_clean + s * eps
        _, eps_hat = self.prior_predict(z_t, lam)
        out = losses.prior_diffusion_term(eps, eps_hat, self.prior_schedule.dlam_dt(t))
        out = out + losses.prior_kl_term(z_clean, self.cfg.lambda_z1)
        if log_var is not None:
            out = out + losses.learned_variance_term(log_var, self.cfg.lambda_z0)
        return out

    def forward(self, x: torch.Tensor, noise: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The joint loss of Algorithm 1 (mean over the batch, nats per image) and detached parts to log."""
        cfg = self.cfg
        noise = {k: v.to(x.device) for k, v in noise.items()}
        z_mean, log_var = self.encode_stats(x)
        z_clean = z_mean
        if log_var is not None:
            z_clean = z_mean + (0.5 * log_var).exp() * noise["eps_enc"]
        joint = cfg.prior_mode == "joint"
        rate = self.rate(z_clean if joint else z_clean.detach(), noise["t_z"], noise["eps_z"],
                         log_var if joint else None)
        z0 = self.noisy_latent(z_clean, noise["eps_0"])
        if cfg.decoder_kind == "diffusion":
            t = noise["t_x"]
            lam = self.decoder_schedule.lam(t)
            a, s = (expand(v, x) for v in alpha_sigma(lam))
            x_t = a * x + s * noise["eps_x"]
            _, eps_hat = self.decoder_predict(x_t, lam, z0)
            dec = losses.decoder_term(noise["eps_x"], eps_hat, self.decoder_schedule.dlam_dt(t),
                                      weight(cfg.decoder_weighting, lam, cfg.bias), cfg.loss_factor)
        else:
            dec = losses.mse_decoder_term(x, self.mse_decode(z0), cfg.mse_sigma, cfg.loss_factor)
        total = self.rate_weight() * rate + dec
        logs = {"rate_bpp": rate.detach().mean() / (math.log(2) * cfg.image_size ** 2),
                "decoder": dec.detach().mean()}
        if not joint:
            _, s0 = alpha_sigma(torch.tensor(cfg.lambda_z0))
            a0 = (1 - s0 ** 2).sqrt()
            kl = losses.gaussian_kl_to_standard(a0 * z_clean, float(s0))
            total = total + cfg.kl_weight * kl
            logs["encoder_kl"] = kl.detach().mean()
        if log_var is not None:
            logs["encoder_std"] = (0.5 * log_var.detach()).exp().mean()
        return total.mean(), logs
