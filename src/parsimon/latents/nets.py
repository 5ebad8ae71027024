"""The networks: denoisers (MLP or diffusers ``UNet2DModel``) and encoders (MLP or diffusers' VAE ``Encoder``).

Every denoiser has one call signature, ``net(z_t, lam, cond) -> out`` with ``z_t`` ``[B, C, H, W]`` (or None
for the MSE decoder, which sees only its condition), ``lam`` the log-SNR ``[B]`` and ``cond`` an optional
``[B, Cc, Hc, Wc]`` condition (the decoder's noisy latent ``z_0``). The noise level enters through diffusers'
sinusoidal ``Timesteps`` + ``TimestepEmbedding`` of ``50·λ`` (``UNet2DModel`` does the same internally).

The paper's networks (ResNet encoder, ViT prior, UViT decoder, 2-level ViT base model; spec B5) are far
too large for a CPU; ``mlp`` is our default at 8×8, ``unet``/``conv`` are the convolutional choices for
larger images and GPUs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from parsimon.errors import ConfigError
from parsimon.registry import Registry

__all__ = ["DENOISERS", "ENCODERS", "MLPDenoiser", "MLPEncoder", "ConvEncoder", "PatchDenoiser", "UNetDenoiser",
           "LAMBDA_SCALE",
           "build_denoiser", "build_encoder"]

# The log-SNR is fed to the sinusoidal embedding as 50·λ (λ ∈ [−10, 10] → [−500, 500], the range of
# DDPM's integer timesteps).
LAMBDA_SCALE = 50.0


def _shape_numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


class _ResMLPBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.emb = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        y = self.fc1(F.silu(self.norm(h))) + self.emb(temb)
        return h + self.fc2(self.drop(F.silu(y)))


class MLPDenoiser(nn.Module):
    """A residual MLP denoiser on flattened inputs, conditioned on λ (diffusers' timestep embedding) and on
    an optional flattened condition.

    Args:
        shape: ``(C, H, W)`` of ``z_t`` and of the output (``in_shape`` may differ, see ``take_input``).
        cond_shape: ``(Cc, Hc, Wc)`` of the condition, or None.
        hidden: Width of the residual stream.
        depth: Number of residual blocks.
        dropout: Dropout inside each block.
        take_input: False for the MSE decoder (no ``z_t``; only the condition).
    """

    def __init__(self, shape, cond_shape=None, *, hidden: int = 256, depth: int = 3, dropout: float = 0.0,
                 take_input: bool = True) -> None:
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        self.shape = tuple(int(s) for s in shape)
        self.cond_shape = tuple(int(s) for s in cond_shape) if cond_shape is not None else None
        self.take_input = take_input
        d_in = (_shape_numel(self.shape) if take_input else 0) + (_shape_numel(cond_shape) if cond_shape else 0)
        if d_in == 0:
            raise ConfigError("an MLP denoiser needs an input or a condition")
        temb_dim = min(128, hidden)
        self.time_proj = Timesteps(temb_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(temb_dim, hidden)
        self.inp = nn.Linear(d_in, hidden)
        # the condition also enters every block beside the noise level (as a class embedding would)
        self.cond_embed = (nn.Sequential(nn.Linear(_shape_numel(cond_shape), hidden), nn.SiLU(),
                                         nn.Linear(hidden, hidden)) if cond_shape else None)
        self.blocks = nn.ModuleList(_ResMLPBlock(hidden, dropout) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, _shape_numel(self.shape))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z_t: torch.Tensor | None, lam: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.take_input:
            parts.append(z_t.flatten(1))
        if self.cond_shape is not None:
            parts.append(cond.flatten(1))
        h = self.inp(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
        temb = self.time_embed(self.time_proj(lam * LAMBDA_SCALE).to(h.dtype))
        if self.cond_embed is not None:
            temb = temb + self.cond_embed(cond.flatten(1))
        for block in self.blocks:
            h = block(h, temb)
        out = self.out(F.silu(self.out_norm(h)))
        return out.view(out.shape[0], *self.shape)


class PatchDenoiser(nn.Module):
    """A local denoiser on 2×2 patches (the paper's patching, B3): each patch is denoised by one shared MLP
    from the noisy pixels of its ``k × k`` patch neighbourhood, the condition's ``k × k`` neighbourhood at
    the patch's position, a learned position embedding and the noise level.

    Its view of the image is local, so global structure is cheaper to carry in the latent than to model —
    the regime UL's decoder is in at ImageNet scale, which an MLP seeing all 64 pixels of a digit is not
    (it models the digit itself and the latent collapses; see docs/latents.md).

    Args:
        shape: ``(C, H, W)``; ``H`` and ``W`` must be even.
        cond_shape: ``(Cc, H/2, W/2)`` (the latent grid must match the patch grid), or None.
        hidden: MLP width.
        depth: Residual blocks.
        dropout: Dropout inside each block.
        kernel: Patch neighbourhood (odd).
        take_input: False for the MSE decoder.
    """

    def __init__(self, shape, cond_shape=None, *, hidden: int = 128, depth: int = 2, dropout: float = 0.0,
                 kernel: int = 3, take_input: bool = True) -> None:
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        self.shape = tuple(int(s) for s in shape)
        c, h, w = self.shape
        if h % 2 or w % 2 or kernel % 2 == 0:
            raise ConfigError(f"a patch decoder needs an even image size and an odd kernel, got {self.shape}, {kernel}")
        self.cond_shape = tuple(int(s) for s in cond_shape) if cond_shape is not None else None
        if self.cond_shape is not None and self.cond_shape[1:] != (h // 2, w // 2):
            raise ConfigError(f"a patch decoder needs the latent on the 2×2 patch grid {(h // 2, w // 2)}, "
                              f"got {self.cond_shape[1:]}; set `latent_size` to {h // 2}")
        self.take_input, self.kernel = take_input, kernel
        d_in = (c * (2 * kernel) ** 2 if take_input else 0) + (self.cond_shape[0] * kernel ** 2 if cond_shape else 0)
        temb_dim = min(128, hidden)
        self.time_proj = Timesteps(temb_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(temb_dim, hidden)
        self.pos = nn.Parameter(torch.zeros(1, (h // 2) * (w // 2), hidden))
        self.inp = nn.Linear(d_in, hidden)
        self.blocks = nn.ModuleList(_ResMLPBlock(hidden, dropout) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, c * 4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z_t: torch.Tensor | None, lam: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        c, h, w = self.shape
        k = self.kernel
        parts = []
        if self.take_input:
            parts.append(F.unfold(z_t, kernel_size=2 * k, stride=2, padding=k - 1))  # [B, C·(2k)², L]
        if self.cond_shape is not None:
            parts.append(F.unfold(cond, kernel_size=k, stride=1, padding=k // 2))  # [B, Cc·k², L]
        x = torch.cat(parts, 1).transpose(1, 2)  # [B, L, D]
        n, length = x.shape[0], x.shape[1]
        hid = self.inp(x) + self.pos
        temb = self.time_embed(self.time_proj(lam * LAMBDA_SCALE).to(hid.dtype))[:, None, :]
        hid = hid.reshape(n * length, -1)
        temb = temb.expand(n, length, -1).reshape(n * length, -1)
        for block in self.blocks:
            hid = block(hid, temb)
        out = self.out(F.silu(self.out_norm(hid))).view(n, h // 2, w // 2, c, 2, 2)
        return out.permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


class UNetDenoiser(nn.Module):
    """diffusers ``UNet2DModel`` as a denoiser; the condition is upsampled (nearest) to the image size and
    concatenated to ``z_t`` along channels.

    Args:
        shape: ``(C, H, W)``.
        cond_shape: ``(Cc, Hc, Wc)`` or None; ``H`` must be a multiple of ``Hc``.
        channels: ``block_out_channels`` (one entry per resolution level).
        layers_per_block: ResNet layers per level.
        attention: Self-attention blocks at the lowest resolution and in the mid block.
        dropout: ResNet dropout.
        take_input: False for the MSE decoder.
    """

    def __init__(self, shape, cond_shape=None, *, channels=(32, 64), layers_per_block: int = 1,
                 attention: bool = False, dropout: float = 0.0, take_input: bool = True) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.shape = tuple(int(s) for s in shape)
        self.cond_shape = tuple(int(s) for s in cond_shape) if cond_shape is not None else None
        self.take_input = take_input
        c, h, w = self.shape
        if h % (2 ** (len(channels) - 1)):
            raise ConfigError(f"image size {h} must be divisible by 2^(levels-1) = {2 ** (len(channels) - 1)} "
                              f"for `channels` {tuple(channels)}")
        if self.cond_shape is not None and (h % self.cond_shape[1] or w % self.cond_shape[2]):
            raise ConfigError(f"condition size {self.cond_shape[1:]} must divide the image size {(h, w)}")
        in_ch = (c if take_input else 0) + (self.cond_shape[0] if self.cond_shape else 0)
        levels = len(channels)
        down = ["DownBlock2D"] * levels
        up = ["UpBlock2D"] * levels
        if attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        groups = 8 if all(ch % 8 == 0 for ch in channels) else 1
        self.unet = UNet2DModel(sample_size=h, in_channels=in_ch, out_channels=c, block_out_channels=tuple(channels),
                                layers_per_block=layers_per_block, down_block_types=tuple(down),
                                up_block_types=tuple(up), norm_num_groups=groups, add_attention=attention,
                                attention_head_dim=min(32, channels[-1]), dropout=dropout)

    def forward(self, z_t: torch.Tensor | None, lam: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        parts = [z_t] if self.take_input else []
        if self.cond_shape is not None:
            scale = self.shape[1] // self.cond_shape[1]
            parts.append(F.interpolate(cond, scale_factor=scale, mode="nearest") if scale > 1 else cond)
        inp = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return self.unet(inp, lam * LAMBDA_SCALE).sample


class MLPEncoder(nn.Module):
    """A deterministic MLP encoder ``x → z_clean`` (or ``(μ, log σ²)`` with ``learned_variance``)."""

    def __init__(self, image_shape, latent_shape, *, hidden: int = 256, depth: int = 2,
                 learned_variance: bool = False) -> None:
        super().__init__()
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.learned_variance = learned_variance
        layers: list[nn.Module] = [nn.Linear(_shape_numel(image_shape), hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, _shape_numel(self.latent_shape) * (2 if learned_variance else 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor):
        out = self.net(x.flatten(1))
        if self.learned_variance:
            mu, log_var = out.chunk(2, dim=1)
            return mu.view(-1, *self.latent_shape), log_var.view(-1, *self.latent_shape)
        return out.view(-1, *self.latent_shape)


class ConvEncoder(nn.Module):
    """diffusers' VAE ``Encoder`` (the Stable Diffusion encoder family), deterministic (``double_z=False``) or
    with a learned variance (``double_z=True``); it downsamples ``len(channels) − 1`` times."""

    def __init__(self, image_shape, latent_shape, *, channels=(32, 64), layers_per_block: int = 1,
                 attention: bool = False, learned_variance: bool = False) -> None:
        super().__init__()
        from diffusers.models.autoencoders.vae import Encoder

        c, h, _ = (int(s) for s in image_shape)
        lc, lh, _ = (int(s) for s in latent_shape)
        if h // (2 ** (len(channels) - 1)) != lh:
            raise ConfigError(f"a conv encoder with `channels` {tuple(channels)} maps {h}×{h} to "
                              f"{h // 2 ** (len(channels) - 1)}×{h // 2 ** (len(channels) - 1)}, not the latent "
                              f"size {lh}; it needs log2({h}/{lh}) + 1 entries in `channels`")
        groups = 8 if all(ch % 8 == 0 for ch in channels) else 1
        self.learned_variance = learned_variance
        self.enc = Encoder(in_channels=c, out_channels=lc, down_block_types=("DownEncoderBlock2D",) * len(channels),
                           block_out_channels=tuple(channels), layers_per_block=layers_per_block,
                           norm_num_groups=groups, double_z=learned_variance, mid_block_add_attention=attention)

    def forward(self, x: torch.Tensor):
        out = self.enc(x)
        if self.learned_variance:
            mu, log_var = out.chunk(2, dim=1)
            return mu, log_var
        return out


DENOISERS: Registry = Registry("arch")
DENOISERS.register("mlp", MLPDenoiser, describe="residual MLP on flattened inputs (fast on CPU at 8×8)")
DENOISERS.register("unet", UNetDenoiser, describe="diffusers UNet2DModel, condition concatenated")
DENOISERS.register("patch", PatchDenoiser, describe="local MLP on 2×2 patches and their neighbourhood")
ENCODERS: Registry = Registry("encoder_arch")
ENCODERS.register("mlp", MLPEncoder, describe="MLP on the flattened image")
ENCODERS.register("conv", ConvEncoder, describe="diffusers VAE Encoder (SD encoder family)")


def build_denoiser(arch: str, shape, cond_shape=None, *, hidden: int, depth: int, channels, layers_per_block: int,
                   attention: bool, dropout: float, take_input: bool = True) -> nn.Module:
    """A denoiser by registry name with the options that apply to it."""
    cls = DENOISERS.get(arch)
    if cls is MLPDenoiser:
        return MLPDenoiser(shape, cond_shape, hidden=hidden, depth=depth, dropout=dropout, take_input=take_input)
    if cls is PatchDenoiser:
        return PatchDenoiser(shape, cond_shape, hidden=hidden, depth=depth, dropout=dropout, take_input=take_input)
    return UNetDenoiser(shape, cond_shape, channels=channels, layers_per_block=layers_per_block, attention=attention,
                        dropout=dropout, take_input=take_input)


def build_encoder(arch: str, image_shape, latent_shape, *, hidden: int, depth: int, channels,
                  layers_per_block: int, attention: bool, learned_variance: bool) -> nn.Module:
    """An encoder by registry name with the options that apply to it."""
    cls = ENCODERS.get(arch)
    if cls is MLPEncoder:
        return MLPEncoder(image_shape, latent_shape, hidden=hidden, depth=depth, learned_variance=learned_variance)
    return ConvEncoder(image_shape, latent_shape, channels=channels, layers_per_block=layers_per_block,
                       attention=attention, learned_variance=learned_variance)
