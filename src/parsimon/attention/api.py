"""``sparse_attention``: one entry point over the dense oracle, the PyTorch, FlexAttention and Triton paths."""

from __future__ import annotations

import torch

from .mask import BlockSparseLayout, _validate_qk, hybrid_block_mask

__all__ = ["sparse_attention", "BACKENDS", "resolve_backend"]

BACKENDS = ("auto", "triton", "flex", "torch", "dense")
TRITON_HEAD_DIMS = (16, 32, 64, 128)


def _validate(q, k, v, layout, backend, scale, causal):
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    _validate_qk(q, k)
    if not isinstance(v, torch.Tensor) or v.dim() != 4:
        raise ValueError("v: expected a 4-d tensor [B, Hkv, N, Dv]")
    if v.device != q.device:
        raise ValueError(f"v: expected the same device as q ({q.device}), got {v.device}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise ValueError(f"{name}: expected the same dtype as q ({q.dtype}), got {t.dtype}")
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise ValueError(f"q: expected dtype float32, float16 or bfloat16, got {q.dtype}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v: expected [B, Hkv, Nk] = {tuple(k.shape[:3])} like k, got {tuple(v.shape[:3])}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0):
        raise ValueError(f"scale: expected a positive float or None, got {scale!r}")
    if causal and q.shape[2] != k.shape[2]:
        raise ValueError(f"causal: needs equal query and key lengths, got {q.shape[2]} and {k.shape[2]}")
    if layout is not None:
        if not isinstance(layout, BlockSparseLayout):
            raise ValueError(f"layout: expected a BlockSparseLayout or None, got {type(layout).__name__}")
        want = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        got = (layout.batch, layout.heads, layout.seq_q, layout.seq_k)
        if want != got:
            raise ValueError(f"layout: built for (B, H, Nq, Nk) = {got}, inputs have {want}")
        if layout.device != q.device:
            raise ValueError(f"layout: on {layout.device}, inputs on {q.device}")
        if causal and not layout.causal:
            raise ValueError("layout: causal=True needs a layout built with causal=True "
                             "(it guarantees every query token keeps a visible key)")


def resolve_backend(backend: str, q: torch.Tensor) -> str:
    """``"auto"`` → ``"triton"`` for CUDA fp16/bf16 inputs (when Triton imports), else ``"torch"``."""
    if backend != "auto":
        return backend
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] in TRITON_HEAD_DIMS:
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch"
        return "triton"
    return "torch"


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
    Backends: ``"triton"`` (CUDA, or CPU under ``TRITON_INTERPRET=1``), ``"flex"`` (FlexAttention),
    ``"torch"`` (gathered blocks, any device), ``"dense"`` (expanded-mask oracle), ``"auto"``.
    """
    _validate(q, k, v, layout, backend, scale, causal)
    if layout is None:
        layout = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode,
                                   causal=causal, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    causal = causal or layout.causal
    name = resolve_backend(backend, q)
    if name == "dense":
        from .reference import dense_masked_attention

        out, lse = dense_masked_attention(q, k, v, layout, scale=scale, causal=causal, return_lse=True)
    elif name == "torch":
        from .torch_backend import torch_block_sparse_attention

        out, lse = torch_block_sparse_attention(q, k, v, layout, scale)
    elif name == "flex":
        from .flex_backend import flex_block_sparse_attention

        out, lse = flex_block_sparse_attention(q, k, v, layout, scale, need_lse=return_lse)
    else:
        from .kernels.triton_attention import triton_block_sparse_attention

        out, lse = triton_block_sparse_attention(q, k, v, layout, scale)
    return (out, lse) if return_lse else out
