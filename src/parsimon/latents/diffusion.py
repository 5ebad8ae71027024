"""An unconditional diffusion model with a sigmoid-weighted ELBO: the stage-2 base model and the baselines.

One class serves three roles (spec B4, B5):

* the **stage-2 base model** on frozen-encoder UL latents, with its maximum log-SNR fixed at the encoder's
  ``λ_z(0) = 5`` (§3.3), so its samples at ``t = 0`` are draws of the noisy latent ``z_0``;
* the latent diffusion model on the **KL-autoencoder** latents (the Stable-Diffusion-latents baseline);
* **pixel-space diffusion** on the images.

Loss per example: ``−λ'(t)/2 · w(λ) · ||ε − ε̂||²`` with ``w = sigmoid(b − λ)`` (decision B6.1), the
weighting the paper uses for its base model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin

from parsimon.errors import ConfigError
from parsimon.latents.nets import DENOISERS, build_denoiser
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

__all__ = ["DiffusionConfig", "DiffusionModel"]


@dataclass(frozen=True)
class DiffusionConfig:
    """The hyper-parameters of a diffusion model (its data shape is given to :class:`DiffusionModel`).

    Defaults are the stage-2 base model (spec B4; sizes ours). Pixel diffusion uses ``lambda_max=10``.
    """

    arch: str = "mlp"  # "mlp" | "unet"; paper: 2-level ViT [512, 1024] channels, [6, 16] blocks
    hidden: int = 512  # mlp width ("bigger than the prior", §3.3)
    depth: int = 3
    unet_channels: tuple[int, ...] = (32, 64)  # unet only
    layers_per_block: int = 1  # unet only
    attention: bool = False  # unet only
    dropout: float = 0.1  # paper B3: dropout 0.1 in the base model
    schedule: str = "linear"  # ours [UNCONFIRMED]
    lambda_max: float = 5.0  # paper §3.3: fixed at λ_z(0) = 5 for the base model (10 for images / AE latents)
    lambda_min: float = -10.0  # ours [UNCONFIRMED]
    weighting: str = "sigmoid"  # paper §3.3: sigmoid weighting for the base model
    bias: float = 0.0  # sigmoid bias [UNCONFIRMED]
    parameterization: str = "x"  # paper B1: networks predict clean data

    def __post_init__(self) -> None:
        for name in ("hidden", "depth", "layers_per_block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"`{name}` must be an integer >= 1, got {v!r}")
        DENOISERS.check(self.arch)
        SCHEDULES.check(self.schedule)
        WEIGHTINGS.check(self.weighting)
        PARAMETERIZATIONS.check(self.parameterization)
        if not self.lambda_min < self.lambda_max:
            raise ConfigError(f"`lambda_min` ({self.lambda_min}) must be below `lambda_max` ({self.lambda_max})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"`dropout` must be in [0, 1), got {self.dropout}")
        if not math.isfinite(self.bias):
            raise ConfigError(f"`bias` must be finite, got {self.bias}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiffusionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown DiffusionConfig field(s) {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class DiffusionModel(ModelMixin, ConfigMixin):
    """An unconditional diffusion model (diffusers ``ModelMixin``); ``forward(x, noise) -> (loss, logs)``.

    Args:
        diffusion_config: A :class:`DiffusionConfig` or its dict.
        shape: The data shape ``(C, H, W)`` (a latent's for a base model, an image's for pixel diffusion).
        data_scale: Data are divided by this before the forward process (the KL-AE latents' scaling factor,
            Stable Diffusion's ``1 / std``); samples are multiplied back. 1 for UL latents and images.
    """

    config_name = "config.json"

    def __init__(self, diffusion_config: dict | DiffusionConfig | None = None, shape=(2, 4, 4),
                 data_scale: float = 1.0) -> None:
        super().__init__()
        cfg = (diffusion_config if isinstance(diffusion_config, DiffusionConfig)
               else DiffusionConfig.from_dict(dict(diffusion_config or {})))
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"`shape` must be (C, H, W) with positive sizes, got {shape}")
        if not data_scale > 0:
            raise ConfigError(f"`data_scale` must be > 0, got {data_scale}")
        self.register_to_config(diffusion_config=cfg.to_dict(), shape=list(shape), data_scale=float(data_scale))
        self.cfg = cfg
        self.shape = shape
        self.data_scale = float(data_scale)
        self.net = build_denoiser(cfg.arch, shape, None, hidden=cfg.hidden, depth=cfg.depth,
                                  channels=cfg.unet_channels, layers_per_block=cfg.layers_per_block,
                                  attention=cfg.attention, dropout=cfg.dropout)
        self.schedule = make_schedule(cfg.schedule, cfg.lambda_max, cfg.lambda_min)

    def predict(self, z_t: torch.Tensor, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x̂, ε̂)`` in the scaled data space (multiply ``x̂`` by ``data_scale`` for the data's units)."""
        a, s = (expand(v, z_t) for v in alpha_sigma(lam))
        out = self.net(z_t, lam).float()
        return to_x_eps(self.cfg.parameterization, out, z_t, a, s)

    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The noise of one training batch (times and ε), on the CPU."""
        return {"t": sample_t(n, generator), "eps": torch.randn(n, *self.shape, generator=generator)}

    def forward(self, x: torch.Tensor, noise: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The sigmoid-weighted diffusion loss (mean over the batch) of data ``x`` (unscaled)."""
        t, eps = noise["t"].to(x.device), noise["eps"].to(x.device)
        x = x.float() / self.data_scale
        lam = self.schedule.lam(t)
        a, s = (expand(v, x) for v in alpha_sigma(lam))
        _, eps_hat = self.predict(a * x + s * eps, lam)
        w = weight(self.cfg.weighting, lam, self.cfg.bias)
        per = -0.5 * self.schedule.dlam_dt(t) * w * (eps - eps_hat).pow(2).flatten(1).sum(1)
        return per.mean(), {"mse_eps": (eps - eps_hat).detach().pow(2).mean()}

    @torch.no_grad()
    def generate(self, n: int, *, steps: int = 50, sampler: str = "ddpm", generator: torch.Generator | None = None,
                 return_prediction: bool = True) -> torch.Tensor:
        """``n`` samples in the data's units: ``x̂`` at ``t = 0`` (``return_prediction``) or the noisy sample at
        ``λ_max`` (a UL base model's ``z_0``, Algorithm 2)."""
        from parsimon.latents.sampling import sample

        device = next(self.parameters()).device
        z = sample(self.predict, (n, *self.shape), self.schedule, steps, sampler, generator=generator, device=device,
                   return_prediction=return_prediction)
        return z * self.data_scale
