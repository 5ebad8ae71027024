"""Operator-level study (spec §8, the paper's Table 1 analogue): Top-k, Top-p and their union at equal
block sparsity on near-uniform and skewed attention rows, measured as relative L1 against dense SDPA.

Inputs are generated (seeded):

- ``uniform``: i.i.d. Gaussian q and k at a small scale, so pooled rows are nearly flat;
- ``skewed``: an attention sink (a shared direction added to every query and to the first key block)
  plus a smooth positional term so neighbouring blocks score high — rows with one dominant block and a
  structured tail.

Equal sparsity: Top-k uses the integer block count closest to the target; Top-p and the union (whose
Top-k floor is half the Top-k count) bisect p until their realised sparsity matches Top-k's.
"""

from __future__ import annotations

import math

import torch

from parsimon.errors import ConfigError

from ..registry import ROWS

__all__ = ["equal_sparsity_table", "make_rows", "relative_l1"]

#: The generated row kinds: :data:`parsimon.attention.registry.ROWS` ("uniform", "skewed", "random").
DISTRIBUTIONS = ROWS


def relative_l1(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Σ|O − O*| / Σ|O*| (the metric of the paper's Tables 1–2)."""
    return float((out.double() - ref.double()).abs().sum() / ref.double().abs().sum())


def _positional(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(200.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)[None]
    return torch.cat([torch.sin(pos / 64 * freq * 8), torch.cos(pos / 64 * freq * 8)], dim=1)


def make_rows(kind: str, *, b: int = 1, h: int = 4, n: int = 2048, d: int = 64, block_k: int = 32,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v ``[b, h, n, d]`` whose pooled attention rows are ``kind`` ("uniform", "skewed", or "random":
    i.i.d. Gaussian q, k, v). "skewed" needs an even ``d`` (its positional term pairs sines and cosines)."""
    ROWS.check(kind)
    if kind == "skewed" and (d < 2 or d % 2):
        raise ConfigError(f"`d` must be an even number >= 2 for 'skewed' rows (sine/cosine pairs), got {d}")
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for _ in range(3))
    if kind == "random":
        return q, k, v

    def per_block(block: int, scale: float) -> torch.Tensor:
        """A random vector per block of ``block`` tokens, repeated over the block's tokens."""
        nb = -(-n // block)
        return (scale * torch.randn(b, h, nb, d, generator=g)).repeat_interleave(block, dim=2)[:, :, :n]

    # Block-level structure (mean pooling keeps it), values offset so the dense output is not ~0.
    v = 0.5 * v + per_block(block_k, 1.0) + 0.5
    # Rows differ in sharpness: a per-query-block factor (Top-p reacts to it, Top-k does not).
    row = torch.empty(b, h, -(-n // 64), 1).uniform_(0.2, 1.8, generator=g).repeat_interleave(64, dim=2)[:, :, :n]
    if kind == "uniform":
        return q + row * per_block(64, 2.0), k + per_block(block_k, 1.0), v
    u = torch.randn(d, generator=g)
    u = u / u.norm()
    pe = _positional(n, d)
    q = 0.5 * q + 1.5 * pe + 2.0 * row * u
    k = 0.5 * k + 1.5 * pe
    k[:, :, :block_k] += 2.0 * u  # the sink block
    return q, k, v


@torch.no_grad()
def equal_sparsity_table(kind: str, *, target: float = 0.90, n: int = 2048, h: int = 4, d: int = 64,
                         block_q: int = 64, block_k: int = 32, seed: int = 0, backend: str = "auto") -> dict:
    """Relative L1 against dense attention for Top-k, Top-p and the union at Top-k's realised sparsity."""
    from parsimon.attention import hybrid_block_mask, sparse_attention

    q, k, v = make_rows(kind, h=h, n=n, d=d, block_k=block_k, seed=seed)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    nk = -(-n // block_k)
    n_topk = max(1, round((1 - target) * nk))
    kw = dict(block_q=block_q, block_k=block_k)

    def lay(mode, topk, topp):
        return hybrid_block_mask(q, k, topk=topk, topp=topp, mode=mode, **kw)

    def matched(mode, topk, want):
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if lay(mode, topk, mid).sparsity > want:
                lo = mid
            else:
                hi = mid
        return min((abs(lay(mode, topk, p).sparsity - want), p) for p in (lo, hi))[1]

    k_frac = (n_topk + 0.5) / nk
    rows = {}
    l_k = lay("topk", k_frac, 0.0)
    want = l_k.sparsity
    p_only = matched("topp", 0.0, want)
    k_union = (max(1, n_topk // 2) + 0.5) / nk
    p_union = matched("hybrid", k_union, want)
    for name, (mode, kk, pp) in {"topk": ("topk", k_frac, 0.0), "topp": ("topp", 0.0, p_only),
                                 "union": ("hybrid", k_union, p_union)}.items():
        layout = lay(mode, kk, pp)
        out = sparse_attention(q, k, v, layout, topk=kk, topp=pp, backend=backend)
        rows[name] = {"topk": kk, "topp": pp, "sparsity": layout.sparsity, "rel_l1": relative_l1(out, dense),
                      "retained_mass": float(layout.retained_mass.mean())}
    return {"kind": kind, "n": n, "heads": h, "d": d, "block_q": block_q, "block_k": block_k, "target": target,
            "arms": rows}
