"""A tiny video diffusion transformer (DiT) whose attention is pluggable.

Clips ``[B, C, F, H, W]`` are cut into ``tpatch × patch × patch`` tubes in raster order (frame, row,
column), so consecutive tokens are spatial neighbours — the same token order the block-sparse mask
pools over. Conditioning (flow time and an optional class label) enters through adaLN-zero modulation.
Every attention call goes through ``model.attention(q, k, v, layer)`` with ``[B, H, N, D]`` tensors;
the default is dense SDPA, and :func:`parsimon.attention.training.sparse_student` swaps in the
block-sparse kernel without touching the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from parsimon.errors import ConfigError

from ..configs import DiTConfig

__all__ = ["AttentionFn", "DiTConfig", "TinyVideoDiT", "dense_attention"]

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int = 0) -> torch.Tensor:
    """Full attention (the teacher's): ``torch.nn.functional.scaled_dot_product_attention``."""
    return F.scaled_dot_product_attention(q, k, v)


def _sincos(n: int, dim: int) -> torch.Tensor:
    """Fixed 1-D sine/cosine embedding ``[n, dim]`` (dim even)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)[None]
    return torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1)


def _pos_embed_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """Factorised 3-D sine/cosine position embedding ``[F·H·W, dim]`` in raster order."""
    f, h, w = grid
    dt = (dim // 4) * 2 if dim >= 8 else 0
    dh = ((dim - dt) // 4) * 2
    dw = dim - dt - dh
    parts = []
    ft, fh, fw = torch.meshgrid(torch.arange(f), torch.arange(h), torch.arange(w), indexing="ij")
    for d, idx, n in ((dt, ft, f), (dh, fh, h), (dw, fw, w)):
        if d:
            parts.append(_sincos(n, d)[idx.reshape(-1)] if d % 2 == 0 else torch.zeros(f * h * w, d))
    return torch.cat(parts, dim=1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sine/cosine features of flow time ``t`` in [0, 1] (scaled by 1000, as diffusion models do)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    arg = t.float()[:, None] * 1000.0 * freq[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


class _Block(nn.Module):
    def __init__(self, cfg: DiTConfig, index: int):
        super().__init__()
        self.index, self.heads = index, cfg.heads
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        self.ada = nn.Linear(cfg.dim, 6 * cfg.dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attention: AttentionFn) -> torch.Tensor:
        b, n, d = x.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c))[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + sc1) + sh1
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = attention(q, k, v, self.index)  # [B, H, N, Dh]
        x = x + g1 * self.proj(o.transpose(1, 2).reshape(b, n, d))
        h = self.norm2(x) * (1 + sc2) + sh2
        return x + g2 * self.mlp(h)


class TinyVideoDiT(nn.Module):
    """Predicts the rectified-flow velocity ``v(x_t, t, y)`` for clips ``[B, C, F, H, W]``."""

    def __init__(self, cfg: DiTConfig = DiTConfig()):
        super().__init__()
        self.cfg = cfg
        self.attention: AttentionFn = dense_attention
        self.embed = nn.Linear(cfg.patch_dim, cfg.dim)
        self.register_buffer("pos", _pos_embed_3d(cfg.grid, cfg.dim)[None], persistent=False)
        self.t_mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        # One extra row is the "no label" embedding (classifier-free style dropout is not used here).
        self.y_embed = nn.Embedding(cfg.num_classes + 1, cfg.dim) if cfg.num_classes else None
        self.blocks = nn.ModuleList(_Block(cfg, i) for i in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.patch_dim)
        for m in (self.ada_out, self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        f, h, w = c.grid
        b = x.shape[0]
        x = x.reshape(b, c.channels, f, c.tpatch, h, c.patch, w, c.patch)
        return x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, f * h * w, c.patch_dim)

    def unpatchify(self, tok: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        f, h, w = c.grid
        b = tok.shape[0]
        x = tok.reshape(b, f, h, w, c.channels, c.tpatch, c.patch, c.patch)
        return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, c.channels, c.frames, c.size, c.size)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cfg
        expect = (c.channels, c.frames, c.size, c.size)
        if x.dim() != 5 or tuple(x.shape[1:]) != expect:
            raise ConfigError(f"x must have shape [B, {', '.join(map(str, expect))}], got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ConfigError(f"t must have shape [B]=[{x.shape[0]}], got {tuple(t.shape)}")
        h = self.embed(self.patchify(x)) + self.pos
        cond = self.t_mlp(timestep_embedding(t, c.dim))
        if self.y_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), c.num_classes, dtype=torch.long, device=x.device)
            cond = cond + self.y_embed(y)
        for blk in self.blocks:
            h = blk(h, cond, self.attention)
        sh, sc = self.ada_out(F.silu(cond))[:, None].chunk(2, dim=-1)
        return self.unpatchify(self.out(self.norm_out(h) * (1 + sc) + sh))
