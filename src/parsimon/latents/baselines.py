"""The Stable-Diffusion-style KL-regularised autoencoder baseline (diffusers ``AutoencoderKL``, small).

The paper compares UL latents with a base model trained on Stable Diffusion latents (Fig. 4, Table 1). Our
stand-in trains diffusers' ``AutoencoderKL`` at a small configuration with SD's objective minus its
perceptual and adversarial parts: an L1 reconstruction (summed over pixels) plus ``kl_weight`` × the KL of
the posterior to N(0, I), with SD's ``kl_weight = 1e-6``. The latent diffusion model on its latents is the
same :class:`~parsimon.latents.diffusion.DiffusionModel` as UL's base model, with SD's scaling of the
latents to unit standard deviation (``data_scale``). Pixel-space diffusion is a ``DiffusionModel`` on the
images (no module of its own).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from parsimon.errors import ConfigError

__all__ = ["KLAEConfig", "KLAutoencoder"]


@dataclass(frozen=True)
class KLAEConfig:
    """A small ``AutoencoderKL`` (SD's KL-f8 has channels (128, 256, 512, 512), 4 latent channels)."""

    channels: tuple[int, ...] = (16, 32)  # ours: block_out_channels; levels = log2(image/latent) + 1
    layers_per_block: int = 1  # ours (SD: 2)
    latent_channels: int = 2  # ours: the same latent shape as UL's default (4×4×2 at 8×8)
    attention: bool = False  # mid-block attention (SD: on)
    kl_weight: float = 1e-6  # SD (LDM autoencoder config)

    def __post_init__(self) -> None:
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"`channels` must be positive, got {self.channels}")
        if self.layers_per_block < 1 or self.latent_channels < 1:
            raise ConfigError("`layers_per_block` and `latent_channels` must be >= 1")
        if not self.kl_weight >= 0:
            raise ConfigError(f"`kl_weight` must be >= 0, got {self.kl_weight}")

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


class KLAutoencoder(nn.Module):
    """A training job around diffusers' ``AutoencoderKL``: ``forward(x, noise) -> (loss, logs)``.

    Args:
        cfg: The autoencoder's configuration.
        image_shape: ``(C, H, W)``.
    """

    def __init__(self, cfg: KLAEConfig, image_shape) -> None:
        super().__init__()
        from diffusers import AutoencoderKL

        c, h, _ = (int(s) for s in image_shape)
        levels = len(cfg.channels)
        if h % (2 ** (levels - 1)):
            raise ConfigError(f"image size {h} is not divisible by 2^(levels-1) = {2 ** (levels - 1)}")
        self.cfg = cfg
        self.image_shape = (c, h, h)
        self.latent_shape = (cfg.latent_channels, h // 2 ** (levels - 1), h // 2 ** (levels - 1))
        groups = 8 if all(ch % 8 == 0 for ch in cfg.channels) else 1
        self.ae = AutoencoderKL(in_channels=c, out_channels=c, down_block_types=("DownEncoderBlock2D",) * levels,
                                up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=tuple(cfg.channels),
                                layers_per_block=cfg.layers_per_block, latent_channels=cfg.latent_channels,
                                norm_num_groups=groups, sample_size=h, mid_block_add_attention=cfg.attention)

    def draw(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The reparameterisation noise of one batch."""
        return {"eps": torch.randn(n, *self.latent_shape, generator=generator)}

    def forward(self, x: torch.Tensor, noise: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        post = self.ae.encode(x).latent_dist
        z = post.mean + post.std * noise["eps"].to(x.device)
        rec = self.ae.decode(z).sample.float()
        l1 = (rec - x).abs().flatten(1).sum(1)
        kl = post.kl().float()
        return (l1 + self.cfg.kl_weight * kl).mean(), {"l1": l1.detach().mean(), "kl": kl.detach().mean()}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (the latents the diffusion model trains on)."""
        return self.ae.encode(x).latent_dist.mean.float()

    @torch.no_grad()
    def kl(self, x: torch.Tensor) -> torch.Tensor:
        """``KL[q(z|x) || N(0, I)]`` per image (nats)."""
        return self.ae.encode(x).latent_dist.kl().float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in ``[−1, 1]`` from latents."""
        return self.ae.decode(z).sample.float().clamp(-1, 1)
