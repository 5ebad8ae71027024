"""``sparse_attention``: one entry point over the dense oracle, the PyTorch, FlexAttention and Triton paths."""

from __future__ import annotations

import torch

from parsimon.errors import ConfigError

from .mask import BlockSparseLayout, _validate_qk, check_scale, hybrid_block_mask
from .registry import BACKENDS, TRITON_HEAD_DIMS, resolve_backend

__all__ = ["sparse_attention", "BACKENDS", "TRITON_HEAD_DIMS", "resolve_backend"]


def _validate(q, k, v, layout, backend, scale, causal):
    BACKENDS.check(backend)
    _validate_qk(q, k)
    if not isinstance(v, torch.Tensor) or v.dim() != 4:
        raise ConfigError("v: expected a 4-d tensor [B, Hkv, N, Dv]")
    if v.device != q.device:
        raise ConfigError(f"v: expected the same device as q ({q.device}), got {v.device}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise ConfigError(f"{name}: expected the same dtype as q ({q.dtype}), got {t.dtype}")
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise ConfigError(f"q: expected dtype float32, float16 or bfloat16, got {q.dtype}")
    if v.shape[:3] != k.shape[:3]:
        raise ConfigError(f"v: expected [B, Hkv, Nk] = {tuple(k.shape[:3])} like k, got {tuple(v.shape[:3])}")
    check_scale(scale)
    if causal and q.shape[2] != k.shape[2]:
        raise ConfigError(f"causal: needs equal query and key lengths, got {q.shape[2]} and {k.shape[2]}")
    if layout is not None:
        if not isinstance(layout, BlockSparseLayout):
            raise ConfigError(f"layout: expected a BlockSparseLayout or None, got {type(layout).__name__}")
        want = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        got = (layout.batch, layout.heads, layout.seq_q, layout.seq_k)
        if want != got:
            raise ConfigError(f"layout: built for (B, H, Nq, Nk) = {got}, inputs have {want}")
        if layout.device != q.device:
            raise ConfigError(f"layout: on {layout.device}, inputs on {q.device}")
        if causal and not layout.causal:
            raise ConfigError("layout: causal=True needs a layout built with causal=True "
                             "(it guarantees every query token keeps a visible key)")


def sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BlockSparseLayout | None = None,
    *,
    topk: float = 0.03,
    topp: float = 0.2,
    block_q: int = 128,
    block_k: int = 64,
    mode: str = "hybrid",
    scale: float | None = None,
    causal: bool = False,
    return_lse: bool = False,
    backend: str = "auto",
):
    """Block-sparse attention over ``layout`` (built with :func:`hybrid_block_mask` when None).

    Shapes: ``q [B, H, Nq, D]``, ``k [B, Hkv, Nk, D]``, ``v [B, Hkv, Nk, Dv]`` with ``Hkv`` dividing ``H``.
    Returns ``out [B, H, Nq, Dv]`` or ``(out, lse)`` (``lse``: float32 ``[B, H, Nq]``, natural log).
    Differentiable in q, k and v on every backend except ``"flex"`` on CPU.
    Backends: the names in :data:`parsimon.attention.registry.BACKENDS` — ``"triton"`` (CUDA, or CPU under
    ``TRITON_INTERPRET=1``), ``"flex"`` (FlexAttention), ``"torch"`` (gathered blocks, any device),
    ``"dense"`` (expanded-mask oracle), ``"auto"``.

    Raises:
        ConfigError: (a ``ValueError``) for inputs or options out of range, naming the argument; e.g. a
            ``scale`` that is NaN, infinite or not positive.
    """
    _validate(q, k, v, layout, backend, scale, causal)
    if layout is None:
        layout = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode,
                                   causal=causal, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    causal = causal or layout.causal
    out, lse = BACKENDS.get(backend)(q, k, v, layout, scale, causal, return_lse)
    return (out, lse) if return_lse else out
