"""The same layout through PyTorch FlexAttention (``BlockMask.from_kv_blocks``): a second path and a peer.

Forward runs compiled on CPU and GPU; backward is FlexAttention's own and exists on GPU only (PyTorch raises
for CPU backward), so on CPU this backend refuses inputs that require grad: use ``backend="torch"`` there.
"""

from __future__ import annotations

import functools

import torch

from parsimon.errors import ConfigError

from .mask import BlockSparseLayout

__all__ = ["flex_block_sparse_attention", "flex_block_mask", "compiled_flex_attention"]


@functools.cache
def compiled_flex_attention():
    """``torch.compile(flex_attention)`` built once per process (eager flex is unfused and slow)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def _mask_mod(seq_k: int, causal: bool):
    if causal:
        def mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & (kv_idx < seq_k)
    else:
        def mod(b, h, q_idx, kv_idx):
            return kv_idx < seq_k
    return mod


def flex_block_mask(layout: BlockSparseLayout):
    """A FlexAttention ``BlockMask`` holding exactly the layout's kept blocks (ragged tails and causal masked)."""
    from torch.nn.attention.flex_attention import BlockMask

    nk = layout.num_k_blocks
    idx = layout.kv_indices
    if idx.shape[-1] < nk:  # FlexAttention reads the number of key blocks from the index width
        idx = torch.nn.functional.pad(idx, (0, nk - idx.shape[-1]))
    return BlockMask.from_kv_blocks(
        layout.kv_counts.contiguous(),
        idx.contiguous(),
        BLOCK_SIZE=(layout.block_q, layout.block_k),
        mask_mod=_mask_mod(layout.seq_k, layout.causal),
        seq_lengths=(layout.seq_q, layout.seq_k),
    )


def flex_block_sparse_attention(q, k, v, layout: BlockSparseLayout, scale: float, *, need_lse: bool = True,
                                block_mask=None):
    """``(out, lse)`` via compiled FlexAttention (``lse`` is None unless ``need_lse``).

    ``block_mask`` may be passed to reuse a converted mask.  On CPU, compiled FlexAttention is inference-only
    and cannot return the LSE: both raise a ValueError there.
    """
    if not q.is_cuda and need_lse:
        raise ConfigError("return_lse: backend 'flex' cannot return the LSE on CPU (compiled FlexAttention on CPU "
                         "does not support it); use backend='torch'")
    if not q.is_cuda and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise ConfigError(
            "backend: 'flex' has no backward on CPU (a PyTorch limitation); use backend='torch' for CPU "
            "training, or run the flex forward under torch.no_grad()"
        )
    from torch.nn.attention.flex_attention import AuxRequest

    bm = flex_block_mask(layout) if block_mask is None else block_mask
    gqa = k.shape[1] != q.shape[1]
    if not need_lse:
        return compiled_flex_attention()(q, k, v, block_mask=bm, scale=scale, enable_gqa=gqa), None
    out, aux = compiled_flex_attention()(q, k, v, block_mask=bm, scale=scale, enable_gqa=gqa,
                                         return_aux=AuxRequest(lse=True))
    return out, aux.lse.float()
