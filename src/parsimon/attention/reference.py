"""The dense masked oracle: exact attention over the expanded block mask (O(N²) memory, tests only)."""

from __future__ import annotations

import torch

from .mask import BlockSparseLayout

__all__ = ["dense_masked_attention"]


def dense_masked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BlockSparseLayout,
    *,
    scale: float | None = None,
    causal: bool = False,
    return_lse: bool = False,
):
    """Softmax attention restricted to ``layout`` (and to the causal triangle when ``causal``), in fp32 (fp64 for fp64 inputs).

    Returns ``out`` (``q``'s dtype, ``[B, H, Nq, Dv]``) or ``(out, lse)`` with ``lse`` the natural-log
    log-sum-exp of the scaled, masked scores, float32 ``[B, H, Nq]``.  Differentiable in q, k, v and lse.
    """
    h, hkv = q.shape[1], k.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    cdt = torch.float64 if q.dtype == torch.float64 else torch.float32
    kf, vf = k.to(cdt), v.to(cdt)
    if hkv != h:
        kf = kf.repeat_interleave(h // hkv, dim=1)
        vf = vf.repeat_interleave(h // hkv, dim=1)
    mask = layout.token_mask()
    if causal and not layout.causal:
        mask = mask & torch.ones(mask.shape[-2:], dtype=torch.bool, device=mask.device).tril()
    s = torch.matmul(q.to(cdt), kf.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None])
    out = torch.matmul(p, vf).to(q.dtype)
    return (out, lse) if return_lse else out
